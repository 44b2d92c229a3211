//! Keys given twice in one JSON object (CONTRACT 12, "Read the policy as ECR will"). A JSON
//! parser keeps one of them silently (serde_json the last), so two `StringEquals` blocks in
//! one `Condition` would make the provider judge and write a policy other than the one the
//! user wrote. This walks the text once, without building anything, and names the first
//! such key and where it is.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::HashSet;
use std::fmt;

/// One step down a JSON document: a key of an object, or a position in a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

/// A key given twice in one object: the steps down to that object, and the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    pub path: Vec<Step>,
    pub key: String,
}

/// The first key given twice in one object of `text`; `None` when there is none, or when
/// the text is not JSON (its parse reports that).
pub fn find(text: &str) -> Option<Duplicate> {
    let mut state = State::default();
    let mut deserializer = serde_json::Deserializer::from_str(text);
    Walk { state: &mut state }
        .deserialize(&mut deserializer)
        .ok()?;
    state.found
}

#[derive(Default)]
struct State {
    path: Vec<Step>,
    found: Option<Duplicate>,
}

struct Walk<'a> {
    state: &'a mut State,
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let state = self.state;
        let mut index = 0;
        loop {
            state.path.push(Step::Index(index));
            let more = seq.next_element_seed(Walk { state: &mut *state })?;
            state.path.pop();
            if more.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let state = self.state;
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key.clone()) && state.found.is_none() {
                state.found = Some(Duplicate {
                    path: state.path.clone(),
                    key: key.clone(),
                });
            }
            state.path.push(Step::Key(key));
            map.next_value_seed(Walk { state: &mut *state })?;
            state.path.pop();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// JSON written with single quotes, for short fragments that are not policies.
    fn q(text: &str) -> String {
        text.replace('\'', "\"")
    }

    #[test]
    fn the_first_key_given_twice_is_found_with_its_place() {
        let text = q("{'Version':'2012-10-17','Statement':[{'Effect':'Allow'},
            {'Effect':'Allow','Condition':{'StringEquals':{'aws:PrincipalAccount':'111122223333'},
             'StringEquals':{'aws:PrincipalOrgID':'o-a1b2c3d4e5'}}}]}");
        assert_eq!(
            find(&text),
            Some(Duplicate {
                path: vec![
                    Step::Key("Statement".into()),
                    Step::Index(1),
                    Step::Key("Condition".into())
                ],
                key: "StringEquals".into()
            })
        );
        assert_eq!(
            find(&q("{'Statement':{'Sid':'A','Sid':'B'},'Statement':[]}")),
            Some(Duplicate {
                path: vec![Step::Key("Statement".into())],
                key: "Sid".into()
            })
        );
        assert_eq!(
            find(&q("{'Version':'2012-10-17','Version':'2012-10-17'}")),
            Some(Duplicate {
                path: vec![],
                key: "Version".into()
            })
        );
    }

    #[test]
    fn the_same_key_in_different_objects_and_numbers_of_any_size_are_fine() {
        for text in [
            q("{'Statement':[{'Sid':'A','Effect':'Allow'},{'Sid':'B','Effect':'Allow'}]}"),
            q("{'a':{'x':1},'b':{'x':[1,2,{'x':null}]},'n':111101111111111111111111111511111.5e3}"),
            q("[{'a':true},{'a':false}]"),
            q("not json"),
        ] {
            assert_eq!(find(&text), None, "{text}");
        }
    }
}
