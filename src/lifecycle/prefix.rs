//! Prefix statements (CONTRACT 15): a statement resource's per-target path, fanned out over
//! every repository under a prefix and every repository creation template at or under it, a
//! few at a time ([`Settings::prefix_concurrency`]). Each repository, and each template, is a
//! target of its own, exactly as a `Custom::ECRRepositoryPolicyStatement` on it: its own
//! lease, record entry and Sid holders, the same judging, planning and write (a template's
//! `repositoryPolicy` is a repository policy). A Create is all or nothing: a target that
//! refuses makes it FAILED naming it, and what was written elsewhere is taken out again
//! (each target's failed-create Delete). A repository or template deleted meanwhile is
//! skipped. The `ROOT` template is reached only by a `ROOT` statement.
//!
//! Before the fan-out, a Create or Update writes its statements into the prefix index, and a
//! Delete takes them out ([`arrivals::register`], [`arrivals::unregister`]): this module
//! uses the index and the arrivals' write on one target, and `arrivals.rs` never uses it.
//!
//! [`Settings::prefix_concurrency`]: super::Settings::prefix_concurrency

use super::arrivals::{self, Arrivals, Indexed};
use super::judge::{self, Findings};
use super::pace::Pacing;
use super::{Context, apply_leased, finish, lease, refused_unless_unchanged, remove_leased};
use crate::ecr::PolicyStore;
use crate::error::Failure;
use crate::event::progress::{Phase, Progress};
use crate::event::{Content, Desired, Prefixed};
use crate::identity::{Target, prefix_matches, template_matches};
use crate::lock::{Holder, LockStore, Record, RecordReader};
use crate::plan::{self, Applied, Approach, Intent};
use futures_util::StreamExt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// How often a long fan-out says how far it got.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// What became of one target.
enum Outcome {
    /// It holds the statements now.
    Held(Applied),
    /// Deleted meanwhile: skipped.
    Gone,
    /// A new match of an Update, none of whose Sids the index gives this resource: nothing
    /// written.
    NoneOwn,
    /// Not started: another target had already refused.
    NotStarted,
    /// It refused, or ECR failed.
    Failed(Failure),
}

/// The targets of a prefix in `region`: the repositories under it, in name order, then the
/// creation templates it reaches ([`template_matches`]), in prefix order.
async fn matching<S: PolicyStore>(
    store: &S,
    region: &str,
    prefix: &str,
) -> Result<Vec<Target>, Failure> {
    let mut names: Vec<String> = store
        .repositories(region)
        .await?
        .into_iter()
        .filter(|name| prefix_matches(prefix, name))
        .collect();
    names.sort();
    let mut templates: Vec<String> = store
        .templates(region)
        .await?
        .into_iter()
        .filter(|template| template_matches(prefix, template))
        .collect();
    templates.sort();
    let repositories = names.into_iter().map(|name| Target::Repository {
        region: region.to_owned(),
        name,
    });
    let templates = templates.into_iter().map(|prefix| Target::Template {
        region: region.to_owned(),
        prefix,
    });
    Ok(repositories.chain(templates).collect())
}

/// How many of `targets` are repositories.
fn repositories_in<'a>(targets: impl IntoIterator<Item = &'a Target>) -> usize {
    targets
        .into_iter()
        .filter(|t| matches!(t, Target::Repository { .. }))
        .count()
}

/// The first of `failures` in key order (repositories before templates, by name), so that
/// the Reason names the same one however the work interleaved.
fn first_failure<T>(mut failures: Vec<(Target, T)>) -> Option<(Target, T)> {
    failures.sort_by_key(|(target, _)| crate::lock::key(target));
    failures.into_iter().next()
}

/// Runs `each` over `targets`, at most `concurrency` at once, in their order, logging done /
/// total (and what ECR's throttling cost) every [`PROGRESS_EVERY`]; from `cx.stop_at` on,
/// no more are started (the next invocation goes on with them). The results, by target,
/// in the order they finished, and the targets not started, in order.
async fn fan_out<T, F, Fut, L>(
    work: &'static str,
    targets: Vec<Target>,
    cx: &Context<'_, L>,
    each: F,
) -> (Vec<(Target, T)>, Vec<Target>)
where
    F: Fn(Target) -> Fut,
    Fut: Future<Output = T>,
{
    let started = Instant::now();
    let progress = |done: usize, total: usize| {
        let Pacing { throttled, paused } = cx.pace.pacing();
        let paused_ms = paused.as_millis() as u64;
        tracing::info!(
            work,
            done,
            total,
            throttled,
            paused_ms,
            "prefix statement progress"
        );
    };
    let concurrency = cx.settings.prefix_concurrency;
    let (results, rest) = fan_out_every(
        PROGRESS_EVERY,
        targets,
        concurrency,
        cx.stop_at,
        each,
        progress,
    )
    .await;
    let Pacing { throttled, paused } = cx.pace.pacing();
    tracing::info!(
        work,
        done = results.len(),
        left = rest.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        throttled,
        paused_ms = paused.as_millis() as u64,
        "prefix statement done"
    );
    (results, rest)
}

/// [`fan_out`], telling `progress` (done, total) every `every`, starting none from `stop_at`.
async fn fan_out_every<K: Clone, T, F, Fut>(
    every: Duration,
    items: Vec<K>,
    concurrency: usize,
    stop_at: Option<Instant>,
    each: F,
    progress: impl Fn(usize, usize),
) -> (Vec<(K, T)>, Vec<K>)
where
    F: Fn(K) -> Fut,
    Fut: Future<Output = T>,
{
    let total = items.len();
    let mut results = Vec::with_capacity(total);
    let mut items = items.into_iter();
    {
        // Started in order, and only while there is time; at least one, so that every
        // invocation gets further than the one before.
        let mut started = 0;
        let next = std::iter::from_fn(|| match stop_at {
            Some(stop) if started > 0 && Instant::now() >= stop => None,
            _ => {
                started += 1;
                items.next()
            }
        });
        let mut running = futures_util::stream::iter(next)
            .map(|item| {
                let work = each(item.clone());
                async move { (item, work.await) }
            })
            .buffer_unordered(concurrency.max(1));
        let mut ticker = tokio::time::interval_at(Instant::now() + every, every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                next = running.next() => match next {
                    Some(result) => results.push(result),
                    None => break,
                },
                _ = ticker.tick() => progress(results.len(), total),
            }
        }
    }
    (results, items.collect())
}

/// Whether the record knows the resource of `tag`: it holds a Sid there, or another took
/// one over from it.
fn knows(record: &Record, tag: &str) -> bool {
    plan::holds_under(record, tag) || record.displaced.iter().any(|d| d.holder.tag == tag)
}

/// One target's Create or Update, as a statement resource on it: judged, leased, read,
/// planned and written by the per-target path. In an Update in place, a target whose
/// record does not know this resource is a new match, and gets what the index holds, as a
/// new repository does by its event: this resource's Sids the index gives it (the `Adopt`
/// rules apply), and the statements of each prefix statement that took one of its Sids
/// there ([`arrivals::apply_on`]). `None`: none of its Sids is its own there, and it wrote
/// nothing. A Create remembers on each target the Sids it took from others in the index,
/// as an arrival does.
async fn apply_one<S: PolicyStore, L: LockStore + RecordReader>(
    store: &S,
    approach: &Approach,
    prefixed: &Prefixed,
    target: Target,
    me: &Holder,
    (own, takers): &(Indexed, Vec<Indexed>),
    cx: &Context<'_, L>,
) -> Result<Option<Applied>, Failure> {
    let mut desired = Desired {
        target,
        ..prefixed.each.clone()
    };
    let findings = judge::judge(&desired, cx.stack_id, cx.settings);
    let findings = refused_unless_unchanged(store, &desired, findings).await?;
    let lease = lease::take(&desired.target, true, cx).await?;
    let new_match = *approach == Approach::UpdateInPlace
        && !lease.as_ref().is_some_and(|l| knows(&l.record, &me.tag));
    let mut any_own = true;
    let approach = if new_match {
        let indexed = |sid: &str| own.statements.iter().any(|(s, _)| s == sid);
        match prefixed.statements().only(indexed) {
            Some(statements) => desired.content = Content::Statements(statements),
            None => any_own = false,
        }
        &Approach::Create
    } else {
        approach
    };
    let applied = if any_own {
        // A Create (a new match too) takes from others here what it took from them in the
        // index, though they never reached this target: its Delete hands it back to them.
        let mut seeded = lease
            .as_ref()
            .filter(|_| approach.creates())
            .map(|taken| arrivals::seeded(taken, own))
            .filter(|s| lease.as_ref().is_some_and(|l| s.record != l.record));
        // Unless the index changed since it was read (one of them was deleted, its failed
        // Create taken out): under this target's lease, a Delete that passed over the index
        // since then comes here after this, and finds what is remembered here.
        if seeded.is_some()
            && let Some(lock) = cx.lock
            && !arrivals::still_indexed(lock, own).await.unwrap_or(false)
        {
            seeded = None;
        }
        let leased = seeded.as_ref().or(lease.as_ref());
        let result = apply_leased(store, approach, &desired, me, leased, findings, cx).await;
        let result = result.map(|(applied, record)| (Some(applied), record));
        finish(lease.as_ref(), result, cx).await?
    } else {
        let record = lease.as_ref().map(|l| l.record.clone()).unwrap_or_default();
        finish(lease.as_ref(), Ok((None, record)), cx).await?
    };
    if new_match && let Some(lock) = cx.lock {
        let on = Arrivals {
            lock,
            settings: cx.settings,
            clock: cx.clock,
            until: cx.deadline,
            lease_until_ms: cx.lease_until_ms,
            owner: cx.lease_owner.clone(),
        };
        for taker in takers {
            let arrived =
                arrivals::apply_on(store, &on, taker, &desired.target, false, cx.deadline).await;
            // Logged as a new repository's event logs it; what it could not write there is
            // the sweep's to find again.
            let _ = arrivals::report(&desired.target, &arrived, None);
        }
    }
    Ok(applied)
}

/// A prefix statement's Create or Update: indexed first (so that a repository created while
/// it runs gets it by its event), then applied to every match; a Create that fails takes
/// its index entry out again.
pub(super) async fn apply<S: PolicyStore, L: LockStore + RecordReader>(
    store: &S,
    approach: &Approach,
    prefixed: &Prefixed,
    me: &Holder,
    cx: &Context<'_, L>,
) -> Result<Applied, Failure> {
    // Statement resources hold their Sids in the record: nothing goes ahead without it.
    if cx.lock.is_none() {
        return Err(Failure::NoLockTable);
    }
    let indexed = arrivals::register(prefixed, approach, me, cx).await?;
    let result = apply_matches(store, approach, prefixed, me, &indexed, cx).await;
    if result.is_err()
        && approach.creates()
        && let Err(error) =
            arrivals::unregister(prefixed.region(), &prefixed.prefix, &me.tag, cx).await
    {
        tracing::warn!(error = %error, "could not take the failed prefix statement out of the index; its Delete does");
    }
    result
}

/// A prefix statement's Delete: out of the index, then its Sids out of every repository
/// under the prefix, and every creation template it reaches, whose record knows it (a
/// target it never reached keeps a statement of the same Sid). Whether ECR changed, and the
/// warnings.
pub(super) async fn delete<S: PolicyStore, L: LockStore>(
    store: &S,
    region: &str,
    prefix: &str,
    me: &Holder,
    sids: &[String],
    cx: &Context<'_, L>,
) -> Result<(bool, Vec<String>), Failure> {
    if cx.lock.is_some() {
        arrivals::end(region, prefix, &me.tag, cx).await?;
    }
    let intent = Intent::DeleteStatements { me, sids };
    removed(over_matches(store, region, prefix, &intent, removing(cx), cx).await?)
}

/// A failed prefix Create's Delete: out of the index, then what the record holds under its
/// request's tag, in every repository under the prefix, taken out. Whether ECR changed, and
/// the warnings.
pub(super) async fn failed_create<S: PolicyStore, L: LockStore>(
    store: &S,
    prefixed: &Prefixed,
    tag: &str,
    cx: &Context<'_, L>,
) -> Result<(bool, Vec<String>), Failure> {
    let region = prefixed.region();
    arrivals::end(region, &prefixed.prefix, tag, cx).await?;
    let intent = Intent::FailedCreate { tag };
    removed(over_matches(store, region, &prefixed.prefix, &intent, removing(cx), cx).await?)
}

/// A prefix statement's Create or Update over every repository under its prefix and every
/// creation template it reaches.
async fn apply_matches<S: PolicyStore, L: LockStore + RecordReader>(
    store: &S,
    approach: &Approach,
    prefixed: &Prefixed,
    me: &Holder,
    indexed: &(Indexed, Vec<Indexed>),
    cx: &Context<'_, L>,
) -> Result<Applied, Failure> {
    // Before anything is written: the id must fit (with a 12-digit account).
    plan::answer_prefix(
        prefixed,
        "0".repeat(12),
        0,
        &[],
        false,
        &me.tag,
        cx.stack_id,
    )?;
    cx.pace.arm();
    let from = cx.progress.cloned().unwrap_or_default();
    if from.phase == Phase::TakeOut {
        return take_out_everywhere(store, prefixed, &me.tag, from, cx).await;
    }
    let all = matching(store, prefixed.region(), &prefixed.prefix).await?;
    let total = repositories_in(&all);
    let templates = all.len() - total;
    let targets: Vec<Target> = all.iter().filter(|t| !from.done(t)).cloned().collect();
    let refused = AtomicBool::new(false);
    let (outcomes, rest) = fan_out("apply", targets, cx, |target| {
        let refused = &refused;
        async move {
            if refused.load(Ordering::SeqCst) {
                return Outcome::NotStarted;
            }
            let key = crate::lock::key(&target);
            match apply_one(store, approach, prefixed, target, me, indexed, cx).await {
                Ok(Some(applied)) => Outcome::Held(applied),
                Ok(None) => Outcome::NoneOwn,
                Err(Failure::Ecr(gone)) if gone.target_gone() => {
                    tracing::info!(target_key = %key, "deleted meanwhile; skipped");
                    Outcome::Gone
                }
                Err(failure) => {
                    refused.store(true, Ordering::SeqCst);
                    Outcome::Failed(failure)
                }
            }
        }
    })
    .await;
    let visited: Vec<Target> = outcomes.iter().map(|(target, _)| target.clone()).collect();
    let mut failures: Vec<(Target, Failure)> = Vec::new();
    let mut held = Vec::new();
    let mut started = Vec::new();
    for (target, outcome) in outcomes {
        match outcome {
            Outcome::Held(applied) => {
                started.push(target.clone());
                held.push((target, applied));
            }
            Outcome::Failed(failure) => {
                started.push(target.clone());
                failures.push((target, failure));
            }
            Outcome::Gone | Outcome::NoneOwn | Outcome::NotStarted => {}
        }
    }
    if let Some((target, failure)) = first_failure(failures) {
        tracing::error!(target_key = %crate::lock::key(&target), error = %failure, "a target of the prefix refused");
        if approach.creates() && from.step > 0 {
            // Earlier invocations wrote too: every match the record says this request holds
            // is taken out, continuing as long as it takes.
            let progress = Progress {
                step: from.step,
                phase: Phase::TakeOut,
                refusal: Some(failure.to_string()),
                ..Progress::default()
            };
            return take_out_everywhere(store, prefixed, &me.tag, progress, cx).await;
        }
        let outcome = if approach.creates() {
            take_out(store, &me.tag, started, &failure, from.step, cx).await?
        } else {
            "the other repositories and templates keep what this update applied to them, and \
             CloudFormation's rollback puts the previous statements back"
                .to_owned()
        };
        return Err(Failure::InPrefix {
            prefix: prefixed.prefix.clone(),
            total,
            templates,
            failure: Box::new(failure),
            outcome,
        });
    }
    let mut progress = from;
    progress.repositories += repositories_in(held.iter().map(|(target, _)| target));
    if progress.registry_id.is_empty() {
        progress.registry_id = held
            .iter()
            .find_map(|(_, a)| a.data.registry_id.clone())
            .unwrap_or_default();
    }
    progress.adopted |= held
        .iter()
        .any(|(_, a)| a.data.adopted.as_deref() == Some("true"));
    progress.changed |= held.iter().any(|(_, a)| a.changed);
    progress
        .warnings
        .extend(distinct(held.iter().filter_map(|(_, a)| a.data.warnings.clone())).warnings);
    progress
        .templates
        .extend(held.iter().filter_map(|(target, _)| match target {
            Target::Template { prefix, .. } => Some(prefix.clone()),
            _ => None,
        }));
    if !rest.is_empty() {
        return Err(Failure::Continues(Box::new(progress.handed_over(&visited))));
    }
    if *approach == Approach::UpdateInPlace {
        // Where a sweep indexed it under a narrower prefix; a new repository there still
        // gets the statements from its own prefix's item first (`arrivals::covering`).
        let region = prefixed.region();
        let forgotten =
            arrivals::forget_elsewhere(region, &prefixed.prefix, &me.tag, &all, false, cx);
        if let Err(error) = forgotten.await {
            tracing::warn!(error = %error, "could not take the prefix statement out of a narrower index item; its Delete does");
        }
    }
    let mut held_templates = progress.templates;
    held_templates.sort();
    let mut applied = plan::answer_prefix(
        prefixed,
        progress.registry_id,
        progress.repositories,
        &held_templates,
        progress.adopted,
        &me.tag,
        cx.stack_id,
    )?;
    applied.changed = progress.changed;
    applied.data.warnings = distinct(progress.warnings.into_iter()).data();
    Ok(applied)
}

/// Each warning once.
fn distinct(warnings: impl Iterator<Item = String>) -> Findings {
    let mut seen: Vec<String> = Vec::new();
    for warning in warnings {
        if !seen.contains(&warning) {
            seen.push(warning);
        }
    }
    Findings {
        warnings: seen,
        ..Findings::default()
    }
}

/// A failed Create's clean-up, in the invocation where a target refused: what the record
/// holds under `tag` in each target it started taken out again, and what it took put back
/// (each target's failed-create Delete). What became of the other targets, for the Reason;
/// or, when time runs out first, the take-out continues in the next invocation.
async fn take_out<S: PolicyStore, L: LockStore>(
    store: &S,
    tag: &str,
    targets: Vec<Target>,
    refusal: &Failure,
    step: u32,
    cx: &Context<'_, L>,
) -> Result<String, Failure> {
    let intent = Intent::FailedCreate { tag };
    let (results, rest) = fan_out("take out", targets, cx, |target| {
        let intent = &intent;
        async move {
            let lease = lease::take(&target, true, cx).await?;
            let result = remove_leased(store, &target, None, intent, lease.as_ref(), cx).await;
            if let Err(failure) = &result
                && super::may_have_landed(failure)
            {
                // The removal may not have landed: the record keeps announcing what this
                // request wrote, so that its failed-create Delete takes it out.
                lease::put_back(lease.as_ref(), cx).await;
            }
            finish(lease.as_ref(), result, cx).await
        }
    })
    .await;
    if !rest.is_empty() {
        return Err(Failure::Continues(Box::new(
            Progress {
                step,
                phase: Phase::TakeOut,
                refusal: Some(refusal.to_string()),
                ..Progress::default()
            }
            .handed_over([]),
        )));
    }
    let left: Vec<(Target, Failure)> = results
        .into_iter()
        .filter_map(|(target, result)| result.err().map(|e| (target, e)))
        .collect();
    let count = left.len();
    Ok(match first_failure(left) {
        None => taken_out(),
        Some((target, error)) => {
            tracing::error!(target_key = %crate::lock::key(&target), error = %error, "could not take the statements out again");
            not_taken_out(count, &format!("{}: {error}", target.describe()))
        }
    })
}

fn taken_out() -> String {
    "what this request wrote in the other repositories and templates was taken out again, so \
     they are as they were"
        .to_owned()
}

fn not_taken_out(count: usize, first: &str) -> String {
    format!(
        "the statements could not be taken out of {count} target{} again (first {first}); \
         CloudFormation's Delete of this failed resource tries again",
        if count == 1 { "" } else { "s" },
    )
}

/// A Create that a target refused after earlier invocations wrote: what the record holds
/// under `tag`, in every match, taken out again, continuing in the next invocation while
/// there is more. Then FAILED, naming the target that refused.
async fn take_out_everywhere<S: PolicyStore, L: LockStore>(
    store: &S,
    prefixed: &Prefixed,
    tag: &str,
    progress: Progress,
    cx: &Context<'_, L>,
) -> Result<Applied, Failure> {
    let intent = Intent::FailedCreate { tag };
    let refusal = progress.refusal.clone().unwrap_or_default();
    let swept = over_matches(
        store,
        prefixed.region(),
        &prefixed.prefix,
        &intent,
        progress,
        cx,
    )
    .await?;
    let outcome = match &swept.failure {
        None => taken_out(),
        Some(first) => not_taken_out(swept.failed, first),
    };
    Err(Failure::InPrefix {
        prefix: prefixed.prefix.clone(),
        total: swept.total,
        templates: swept.templates,
        failure: Box::new(Failure::Earlier(refusal)),
        outcome,
    })
}

/// A Delete's progress so far.
fn removing<L>(cx: &Context<'_, L>) -> Progress {
    cx.progress.cloned().unwrap_or(Progress {
        phase: Phase::Remove,
        ..Progress::default()
    })
}

/// What a Delete's sweep over the matches came to, over every invocation.
struct Swept {
    prefix: String,
    changed: bool,
    warnings: Vec<String>,
    /// The matching repositories, and templates.
    total: usize,
    templates: usize,
    /// Targets that failed, and the first of them.
    failed: usize,
    failure: Option<String>,
}

/// A Delete's answer: whether ECR changed and the warnings, or, when a target failed, the
/// failure naming it.
fn removed(swept: Swept) -> Result<(bool, Vec<String>), Failure> {
    if let Some(first) = swept.failure {
        let failed = swept.failed;
        return Err(Failure::InPrefix {
            prefix: swept.prefix,
            total: swept.total,
            templates: swept.templates,
            failure: Box::new(Failure::Earlier(first)),
            outcome: format!(
                "{failed} of them failed; the statements were taken out of the others. Retry \
                 the stack operation"
            ),
        });
    }
    Ok((swept.changed, distinct(swept.warnings.into_iter()).warnings))
}

/// A Delete's `intent` on every target of the prefix after what `progress` says is done,
/// each under its lease, where the record knows the tag; when time runs out first, the rest
/// continues in the next invocation. A failure in one is reported once all were tried.
async fn over_matches<S: PolicyStore, L: LockStore>(
    store: &S,
    region: &str,
    prefix: &str,
    intent: &Intent<'_>,
    mut progress: Progress,
    cx: &Context<'_, L>,
) -> Result<Swept, Failure> {
    let tag = match intent {
        Intent::DeleteStatements { me, .. } => me.tag.as_str(),
        Intent::FailedCreate { tag } => tag,
        Intent::Apply { me, .. } | Intent::DeleteWhole { me } | Intent::Leftovers { me, .. } => {
            me.tag.as_str()
        }
    };
    cx.pace.arm();
    let all = matching(store, region, prefix).await?;
    let total = repositories_in(&all);
    let templates = all.len() - total;
    let targets: Vec<Target> = all.iter().filter(|t| !progress.done(t)).cloned().collect();
    let (results, rest) = fan_out("delete", targets, cx, |target| async move {
        let lease = lease::take(&target, true, cx).await?;
        let record = lease.as_ref().map(|l| l.record.clone()).unwrap_or_default();
        let result = if knows(&record, tag) {
            remove_leased(store, &target, None, intent, lease.as_ref(), cx).await
        } else {
            Ok(((false, Vec::new()), record))
        };
        finish(lease.as_ref(), result, cx).await
    })
    .await;
    let visited: Vec<Target> = results.iter().map(|(target, _)| target.clone()).collect();
    let mut failures = Vec::new();
    for (target, result) in results {
        match result {
            Ok((c, w)) => {
                progress.changed |= c;
                progress.warnings.extend(w);
            }
            Err(failure) => failures.push((target, failure)),
        }
    }
    progress.failed += failures.len();
    if let Some((target, failure)) = first_failure(failures) {
        tracing::error!(target_key = %crate::lock::key(&target), error = %failure, "a target of the prefix failed");
        // An earlier invocation's failure comes first in the targets' order.
        progress.failure.get_or_insert_with(|| failure.to_string());
    }
    if !rest.is_empty() {
        return Err(Failure::Continues(Box::new(progress.handed_over(&visited))));
    }
    if cx.lock.is_some() {
        arrivals::forget_elsewhere(region, prefix, tag, &all, true, cx).await?;
    }
    Ok(Swept {
        prefix: prefix.to_owned(),
        changed: progress.changed,
        warnings: progress.warnings,
        total,
        templates,
        failed: progress.failed,
        failure: progress.failure,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[tokio::test(start_paused = true)]
    async fn progress_is_told_every_period_with_done_and_total() {
        let told = Mutex::new(Vec::new());
        let names: Vec<String> = (0..9).map(|n| format!("team/{n}")).collect();
        // One at a time, 3 s each: 3 done at 10 s, 6 at 20 s, all 9 at 27 s.
        let (results, rest) = fan_out_every(
            Duration::from_secs(10),
            names,
            1,
            None,
            |name| async move {
                tokio::time::sleep(Duration::from_secs(3)).await;
                name.len()
            },
            |done, total| told.lock().expect("lock").push((done, total)),
        )
        .await;
        assert_eq!(results.len(), 9);
        assert!(rest.is_empty());
        assert_eq!(*told.lock().expect("lock"), [(3, 9), (6, 9)]);
    }

    #[tokio::test(start_paused = true)]
    async fn no_more_than_the_concurrency_run_at_once() {
        let running = std::sync::atomic::AtomicUsize::new(0);
        let most = std::sync::atomic::AtomicUsize::new(0);
        let names: Vec<String> = (0..10).map(|n| n.to_string()).collect();
        fan_out_every(
            Duration::from_secs(10),
            names,
            3,
            None,
            |_| async {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(1)).await;
                running.fetch_sub(1, Ordering::SeqCst);
            },
            |_, _| {},
        )
        .await;
        assert_eq!(most.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn from_the_stop_none_is_started_and_those_started_finish_in_order() {
        let names: Vec<String> = (0..10).map(|n| format!("team/{n}")).collect();
        // Two at a time, 1 s each, stopping at 2.5 s: 0 and 1 start at 0 s, 2 and 3 at 1 s,
        // 4 and 5 at 2 s; none from 2.5 s on.
        let stop = Instant::now() + Duration::from_millis(2500);
        let (results, rest) = fan_out_every(
            Duration::from_secs(10),
            names.clone(),
            2,
            Some(stop),
            |_| tokio::time::sleep(Duration::from_secs(1)),
            |_, _| {},
        )
        .await;
        let mut done: Vec<String> = results.into_iter().map(|(name, _)| name).collect();
        done.sort();
        assert_eq!(done, names[..6]);
        assert_eq!(rest, names[6..]);
        // The last started finishes after the stop.
        assert_eq!(Instant::now(), stop + Duration::from_millis(500));
    }

    #[tokio::test(start_paused = true)]
    async fn past_the_stop_one_is_still_started() {
        let names: Vec<String> = (0..3).map(|n| n.to_string()).collect();
        let (results, rest) = fan_out_every(
            Duration::from_secs(10),
            names.clone(),
            2,
            Some(Instant::now()),
            |_| async {},
            |_, _| {},
        )
        .await;
        assert_eq!(results.len(), 1);
        assert_eq!(rest, names[1..]);
    }
}
