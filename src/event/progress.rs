//! How far the invocations of one request got (CONTRACT 15), handed from one invocation to
//! the next in the event itself, under [`PROGRESS_KEY`] (the lifecycle's
//! `continuation` module says how it is used).

use crate::identity::Target;
use serde::{Deserialize, Serialize};

/// The event's key under which an invocation hands its progress to the next.
pub const PROGRESS_KEY: &str = "EcrPolicyProviderProgress";

/// Where a target stands in the order the fan-out works in: repositories by name, then
/// creation templates by prefix.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Position {
    Repository(String),
    Template(String),
}

impl Position {
    pub fn of(target: &Target) -> Option<Position> {
        match target {
            Target::Repository { name, .. } => Some(Position::Repository(name.clone())),
            Target::Template { prefix, .. } => Some(Position::Template(prefix.clone())),
            Target::Registry { .. } => None,
        }
    }
}

/// What the invocations so far are doing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// A Create's or Update's statements going in.
    #[default]
    Apply,
    /// A Create that a target refused: what it wrote, in every invocation, taken out again.
    TakeOut,
    /// A Delete (or a failed Create's Delete): the statements taken out.
    Remove,
}

/// How far the invocations of one request got, handed to the next.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Progress {
    /// How many invocations came before the one this is handed to.
    pub step: u32,
    pub phase: Phase,
    /// Every target up to this one, in the fan-out's order, is done.
    pub after: Option<Position>,
    /// Repositories that hold the statements (Apply).
    pub repositories: usize,
    /// The prefixes of the templates that hold them (Apply).
    pub templates: Vec<String>,
    pub changed: bool,
    pub adopted: bool,
    pub registry_id: String,
    pub warnings: Vec<String>,
    /// Targets whose statements could not be taken out (Remove, TakeOut).
    pub failed: usize,
    /// The first of them, and why, in the Reason's words.
    pub failure: Option<String>,
    /// Why a Create is being taken out (TakeOut): the target that refused, in the Reason's
    /// words.
    pub refusal: Option<String>,
}

impl Progress {
    /// Whether `target` was done by an invocation before.
    pub fn done(&self, target: &Target) -> bool {
        match (&self.after, Position::of(target)) {
            (Some(after), Some(position)) => position <= *after,
            _ => false,
        }
    }

    /// The progress to hand over, once every target up to the last of `started` is done.
    pub fn handed_over<'a>(mut self, started: impl IntoIterator<Item = &'a Target>) -> Self {
        let last = started.into_iter().filter_map(Position::of).max();
        if last > self.after {
            self.after = last;
        }
        self.step += 1;
        self
    }

    /// Reads the progress an event carries, taking it out of the event; `Ok(None)` when it
    /// carries none.
    pub fn take_from(event: &mut serde_json::Value) -> Result<Option<Progress>, String> {
        let Some(value) = event.as_object_mut().and_then(|o| o.remove(PROGRESS_KEY)) else {
            return Ok(None);
        };
        serde_json::from_value(value)
            .map(Some)
            .map_err(|e| format!("{PROGRESS_KEY} does not read: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn repo(name: &str) -> Target {
        Target::Repository {
            region: "us-east-1".into(),
            name: name.into(),
        }
    }

    fn template(prefix: &str) -> Target {
        Target::Template {
            region: "us-east-1".into(),
            prefix: prefix.into(),
        }
    }

    #[test]
    fn repositories_come_before_templates_and_each_in_name_order() {
        let progress = Progress::default().handed_over([&repo("team/b"), &repo("team/a")]);
        assert_eq!(progress.step, 1);
        assert!(progress.done(&repo("team/a")) && progress.done(&repo("team/b")));
        assert!(!progress.done(&repo("team/c")));
        assert!(!progress.done(&template("team")));
        let progress = progress.handed_over([&template("team")]);
        assert!(progress.done(&repo("team/z")) && progress.done(&template("team")));
        assert!(!progress.done(&template("team/web")));
        // Nothing started: it stays where it was.
        let progress = progress.handed_over([]);
        assert_eq!(progress.after, Some(Position::Template("team".into())));
        assert_eq!(progress.step, 3);
    }

    #[test]
    fn progress_rides_in_the_event_and_comes_out_again() {
        let progress = Progress {
            repositories: 3,
            templates: vec!["team".into()],
            failure: Some("why".into()),
            ..Progress::default()
        }
        .handed_over([&repo("team/x")]);
        let mut event = json!({"RequestType": "Create"});
        event[PROGRESS_KEY] = serde_json::to_value(&progress).expect("JSON");
        assert_eq!(Progress::take_from(&mut event), Ok(Some(progress)));
        assert_eq!(event, json!({"RequestType": "Create"}));
        assert_eq!(Progress::take_from(&mut event), Ok(None));
        let mut bad = json!({"RequestType": "Create", PROGRESS_KEY: {"Step": "two"}});
        assert!(Progress::take_from(&mut bad).is_err());
    }
}
