//! An in-memory ECR for tests and benchmarks: the same answers as the real service for the
//! operations the provider uses, with counters and injectable faults.

use super::{Deleted, EcrError, LivePolicy, PolicyScope, PolicyStore};
use crate::identity::Target;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

/// The account id the in-memory registry belongs to.
pub const ACCOUNT_ID: &str = "123456789012";

/// Calls counted by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Calls {
    pub reads: usize,
    pub writes: usize,
    pub deletes: usize,
    /// `GetAccountSetting` calls.
    pub settings: usize,
    /// `DescribeRepositories` calls (all pages of one listing).
    pub lists: usize,
    /// `DescribeRepositoryCreationTemplates` listings (all pages of one).
    pub template_lists: usize,
}

#[derive(Default)]
struct State {
    registry: HashMap<String, String>,
    repositories: HashSet<(String, String)>,
    repository_policies: HashMap<(String, String), String>,
    /// Repository creation templates by (region, prefix), with their `repositoryPolicy`.
    templates: HashMap<(String, String), Option<String>>,
    calls: Calls,
    write_failures: VecDeque<EcrError>,
    lost_write_answers: VecDeque<Option<EcrError>>,
    delete_failures: VecDeque<EcrError>,
    read_failures: VecDeque<EcrError>,
    hang: bool,
    panic_next: bool,
    /// `None` answers V2, the scope of registries created since 2023.
    scope: Option<Result<PolicyScope, EcrError>>,
    /// How far behind the writes reads are: a read returns what the target held this long
    /// ago, as ECR's eventually consistent reads can.
    lag: std::time::Duration,
    /// Each write and delete: the target, when, and what it held before.
    history: Vec<(Target, tokio::time::Instant, Option<String>)>,
    /// The next writes answer nothing and land this long after they were sent.
    late_writes: VecDeque<std::time::Duration>,
    /// How long each read takes, so that concurrent requests overlap.
    read_delay: std::time::Duration,
    /// Reads under way now, and the most there ever were at once.
    reads_in_flight: usize,
    most_reads_in_flight: usize,
    /// Repositories the next listing still shows and that are deleted right after it.
    deleted_after_listing: Vec<(String, String)>,
    /// The same for creation templates, by (region, prefix).
    templates_deleted_after_listing: Vec<(String, String)>,
}

/// In-memory ECR. Policies come back pretty-printed, as ECR reformats them.
#[derive(Default)]
pub struct MemoryEcr {
    state: Arc<Mutex<State>>,
}

impl MemoryEcr {
    pub fn new() -> Self {
        Self::default()
    }

    fn shared(&self) -> Arc<Mutex<State>> {
        self.state.clone()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn create_repository(&self, region: &str, name: &str) {
        self.state()
            .repositories
            .insert((region.to_owned(), name.to_owned()));
    }

    pub fn delete_repository(&self, region: &str, name: &str) {
        let key = (region.to_owned(), name.to_owned());
        let mut state = self.state();
        state.repositories.remove(&key);
        state.repository_policies.remove(&key);
    }

    /// A repository creation template for `prefix`, without a policy.
    pub fn create_template(&self, region: &str, prefix: &str) {
        self.state()
            .templates
            .insert((region.to_owned(), prefix.to_owned()), None);
    }

    pub fn delete_template(&self, region: &str, prefix: &str) {
        self.state()
            .templates
            .remove(&(region.to_owned(), prefix.to_owned()));
    }

    /// Sets a policy out of band, as another tool or a person would (a repository or a
    /// template that does not exist yet is created).
    pub fn seed(&self, target: &Target, text: &str) {
        let mut state = self.state();
        match target {
            Target::Registry { region } => {
                state.registry.insert(region.clone(), text.to_owned());
            }
            Target::Repository { region, name } => {
                let key = (region.clone(), name.clone());
                state.repositories.insert(key.clone());
                state.repository_policies.insert(key, text.to_owned());
            }
            Target::Template { region, prefix } => {
                state
                    .templates
                    .insert((region.clone(), prefix.clone()), Some(text.to_owned()));
            }
        }
    }

    /// Sets (`Some`) or deletes (`None`) a policy out of band, as the console or another tool
    /// would: unlike [`MemoryEcr::seed`], a lagging read may still show what was there
    /// before. A repository that does not exist is left alone.
    pub fn write_out_of_band(&self, target: &Target, text: Option<&str>) {
        let mut state = self.state();
        match text {
            Some(text) => {
                let _ = state.land(target, text);
            }
            None => {
                state.remember_before_write(target);
                state.remove(target);
            }
        }
    }

    /// Each write made to the target, oldest first: when, and what the target held before it.
    pub fn writes(&self, target: &Target) -> Vec<(tokio::time::Instant, Option<String>)> {
        self.state()
            .history
            .iter()
            .filter(|(t, _, _)| t == target)
            .map(|(_, at, before)| (*at, before.clone()))
            .collect()
    }

    /// The live policy text, read without counting a call.
    pub fn live(&self, target: &Target) -> Option<String> {
        self.state().current(target)
    }

    pub fn calls(&self) -> Calls {
        self.state().calls
    }

    /// The next writes fail with these errors, in order.
    pub fn fail_writes(&self, errors: impl IntoIterator<Item = EcrError>) {
        self.state().write_failures.extend(errors);
    }

    /// The next writes land, but their answers are lost: `Some(error)` answers with that
    /// error, `None` never answers (a connection that dies after the request went through).
    pub fn lose_write_answers(&self, answers: impl IntoIterator<Item = Option<EcrError>>) {
        self.state().lost_write_answers.extend(answers);
    }

    /// The next deletes fail with these errors, in order.
    pub fn fail_deletes(&self, errors: impl IntoIterator<Item = EcrError>) {
        self.state().delete_failures.extend(errors);
    }

    /// The next reads fail with these errors, in order.
    pub fn fail_reads(&self, errors: impl IntoIterator<Item = EcrError>) {
        self.state().read_failures.extend(errors);
    }

    /// What `GetAccountSetting` answers for the registry policy scope.
    pub fn set_policy_scope(&self, scope: Result<PolicyScope, EcrError>) {
        self.state().scope = Some(scope);
    }

    /// From now on, each read returns what the target held `lag` ago, as ECR's eventually
    /// consistent reads can (writes made before this call count too).
    pub fn lag_reads(&self, lag: std::time::Duration) {
        self.state().lag = lag;
    }

    /// The next writes are sent but never answered, and land `after` each was sent: a write
    /// still in flight when the caller gives up on it.
    pub fn land_writes_late(&self, after: impl IntoIterator<Item = std::time::Duration>) {
        self.state().late_writes.extend(after);
    }

    /// The next `DescribeRepositories` in `region` still lists `name`, which is deleted
    /// right after: a repository deleted while a prefix statement works through the list.
    pub fn delete_after_listing(&self, region: &str, name: &str) {
        self.state()
            .deleted_after_listing
            .push((region.to_owned(), name.to_owned()));
    }

    /// The next `DescribeRepositoryCreationTemplates` in `region` still lists `prefix`,
    /// whose template is deleted right after.
    pub fn delete_template_after_listing(&self, region: &str, prefix: &str) {
        self.state()
            .templates_deleted_after_listing
            .push((region.to_owned(), prefix.to_owned()));
    }

    /// From now on, each read takes `delay`.
    pub fn delay_reads(&self, delay: std::time::Duration) {
        self.state().read_delay = delay;
    }

    /// The most reads that were under way at once (counted while reads are delayed, see
    /// [`MemoryEcr::delay_reads`]).
    pub fn most_reads_at_once(&self) -> usize {
        self.state().most_reads_in_flight
    }

    /// Every call from now on never returns.
    pub fn hang(&self) {
        self.state().hang = true;
    }

    /// The next call panics, as a bug would.
    pub fn panic_on_next_call(&self) {
        self.state().panic_next = true;
    }

    async fn maybe_hang(&self) {
        let (hang, panic) = {
            let mut state = self.state();
            (state.hang, std::mem::take(&mut state.panic_next))
        };
        if panic {
            panic!("injected fault: a panic inside an ECR call");
        }
        if hang {
            std::future::pending::<()>().await;
        }
    }
}

impl MemoryEcr {
    /// Applies a write; returns how its answer is lost, if it is.
    fn write_now(
        &self,
        target: &Target,
        policy_text: &str,
    ) -> Result<Option<Option<EcrError>>, EcrError> {
        let mut state = self.state();
        state.calls.writes += 1;
        if let Some(error) = state.write_failures.pop_front() {
            return Err(error);
        }
        state.land(target, policy_text)?;
        Ok(state.lost_write_answers.pop_front())
    }
}

impl State {
    /// A write takes effect.
    fn land(&mut self, target: &Target, policy_text: &str) -> Result<(), EcrError> {
        self.exists(target)?;
        self.remember_before_write(target);
        match target {
            Target::Registry { region } => {
                self.registry.insert(region.clone(), policy_text.to_owned());
            }
            Target::Repository { region, name } => {
                self.repository_policies
                    .insert((region.clone(), name.clone()), policy_text.to_owned());
            }
            Target::Template { region, prefix } => {
                // An empty `repositoryPolicy` is no policy, as ECR reads it.
                let text = Some(policy_text.to_owned()).filter(|t| !t.is_empty());
                self.templates
                    .insert((region.clone(), prefix.clone()), text);
            }
        }
        Ok(())
    }

    /// The repository or template is there (the registry always is).
    fn exists(&self, target: &Target) -> Result<(), EcrError> {
        match target {
            Target::Registry { .. } => Ok(()),
            Target::Repository { region, name } => {
                if self.repositories.contains(&(region.clone(), name.clone())) {
                    Ok(())
                } else {
                    Err(repository_not_found(region, name))
                }
            }
            Target::Template { region, prefix } => {
                if self
                    .templates
                    .contains_key(&(region.clone(), prefix.clone()))
                {
                    Ok(())
                } else {
                    Err(EcrError::TemplateNotFound {
                        prefix: prefix.clone(),
                        region: region.clone(),
                    })
                }
            }
        }
    }

    /// Takes the target's policy away (a template stays, with no policy); what it held.
    fn remove(&mut self, target: &Target) -> Option<String> {
        match target {
            Target::Registry { region } => self.registry.remove(region),
            Target::Repository { region, name } => self
                .repository_policies
                .remove(&(region.clone(), name.clone())),
            Target::Template { region, prefix } => self
                .templates
                .get_mut(&(region.clone(), prefix.clone()))
                .and_then(Option::take),
        }
    }

    fn current(&self, target: &Target) -> Option<String> {
        match target {
            Target::Registry { region } => self.registry.get(region).cloned(),
            Target::Repository { region, name } => self
                .repository_policies
                .get(&(region.clone(), name.clone()))
                .cloned(),
            Target::Template { region, prefix } => self
                .templates
                .get(&(region.clone(), prefix.clone()))
                .cloned()
                .flatten(),
        }
    }

    /// Remembers what the target holds before a write, for lagging reads.
    fn remember_before_write(&mut self, target: &Target) {
        let before = self.current(target);
        self.history
            .push((target.clone(), tokio::time::Instant::now(), before));
    }

    /// A lagging read's answer, if this read lags: what the target held before the first
    /// write made within the lag.
    fn stale_read(&mut self, target: &Target) -> Option<Option<String>> {
        if self.lag.is_zero() {
            return None;
        }
        let now = tokio::time::Instant::now();
        self.history
            .iter()
            .find(|(t, at, _)| t == target && now.saturating_duration_since(*at) < self.lag)
            .map(|(_, _, before)| before.clone())
    }
}

fn reformat(text: &str) -> String {
    serde_json::from_str::<serde_json::Value>(text)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| text.to_owned())
}

fn repository_not_found(region: &str, name: &str) -> EcrError {
    EcrError::RepositoryNotFound {
        name: name.to_owned(),
        region: region.to_owned(),
    }
}

impl MemoryEcr {
    fn read_now(
        &self,
        target: &Target,
    ) -> (Result<Option<LivePolicy>, EcrError>, std::time::Duration) {
        let mut state = self.state();
        let delay = state.read_delay;
        (Self::read_state(&mut state, target), delay)
    }

    fn read_state(state: &mut State, target: &Target) -> Result<Option<LivePolicy>, EcrError> {
        state.calls.reads += 1;
        if let Some(error) = state.read_failures.pop_front() {
            return Err(error);
        }
        if let Some(before) = state.stale_read(target) {
            return Ok(before.map(|text| LivePolicy {
                registry_id: ACCOUNT_ID.to_owned(),
                text: reformat(&text),
            }));
        }
        state.exists(target)?;
        Ok(state.current(target).map(|text| LivePolicy {
            registry_id: ACCOUNT_ID.to_owned(),
            text: reformat(&text),
        }))
    }
}

impl PolicyStore for MemoryEcr {
    async fn get(&self, target: &Target) -> Result<Option<LivePolicy>, EcrError> {
        self.maybe_hang().await;
        let (answer, delay) = self.read_now(target);
        // The answer travels back while others may write: the window a lock must close.
        if !delay.is_zero() {
            {
                let mut state = self.state();
                state.reads_in_flight += 1;
                state.most_reads_in_flight = state.most_reads_in_flight.max(state.reads_in_flight);
            }
            tokio::time::sleep(delay).await;
            self.state().reads_in_flight -= 1;
        }
        answer
    }

    async fn put(
        &self,
        target: &Target,
        policy_text: &str,
        _force: bool,
    ) -> Result<String, EcrError> {
        self.maybe_hang().await;
        let late = self.state().late_writes.pop_front();
        if let Some(after) = late {
            self.state().calls.writes += 1;
            let (target, text) = (target.clone(), policy_text.to_owned());
            let state = self.shared();
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                let mut state = state
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                // A late write to a repository deleted meanwhile lands nowhere.
                let _ = state.land(&target, &text);
            });
            return std::future::pending().await;
        }
        match self.write_now(target, policy_text)? {
            None => Ok(ACCOUNT_ID.to_owned()),
            Some(Some(error)) => Err(error),
            Some(None) => std::future::pending().await,
        }
    }

    async fn delete(
        &self,
        target: &Target,
        _registry_id: Option<&str>,
    ) -> Result<Deleted, EcrError> {
        self.maybe_hang().await;
        let mut state = self.state();
        state.calls.deletes += 1;
        if let Some(error) = state.delete_failures.pop_front() {
            return Err(error);
        }
        state.remember_before_write(target);
        let removed = state.remove(target);
        Ok(if removed.is_some() {
            Deleted::Removed
        } else {
            Deleted::AlreadyGone
        })
    }

    async fn policy_scope(&self, _region: &str) -> Result<PolicyScope, EcrError> {
        self.maybe_hang().await;
        let mut state = self.state();
        state.calls.settings += 1;
        state.scope.clone().unwrap_or(Ok(PolicyScope::V2))
    }

    async fn repositories(&self, region: &str) -> Result<Vec<String>, EcrError> {
        self.maybe_hang().await;
        let mut state = self.state();
        state.calls.lists += 1;
        let names = in_region(state.repositories.iter(), region);
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut state.deleted_after_listing)
            .into_iter()
            .partition(|(r, _)| r == region);
        state.deleted_after_listing = later;
        for key in now {
            state.repository_policies.remove(&key);
            state.repositories.remove(&key);
        }
        Ok(names)
    }

    async fn templates(&self, region: &str) -> Result<Vec<String>, EcrError> {
        self.maybe_hang().await;
        let mut state = self.state();
        state.calls.template_lists += 1;
        let prefixes = in_region(state.templates.keys(), region);
        let (now, later): (Vec<_>, Vec<_>) =
            std::mem::take(&mut state.templates_deleted_after_listing)
                .into_iter()
                .partition(|(r, _)| r == region);
        state.templates_deleted_after_listing = later;
        for key in now {
            state.templates.remove(&key);
        }
        Ok(prefixes)
    }
}

/// The names of the (region, name) keys in `region`, sorted: a listing's answer.
fn in_region<'a>(keys: impl Iterator<Item = &'a (String, String)>, region: &str) -> Vec<String> {
    let mut names: Vec<String> = keys
        .filter(|(r, _)| r == region)
        .map(|(_, name)| name.clone())
        .collect();
    names.sort();
    names
}
