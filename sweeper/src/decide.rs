//! The decision: one pure function from a pod's metadata, the active task instances, the sibling
//! pods and the clock to a [`Decision`]. docs/design.md §5's table, row by row, first match wins.
//!
//! No I/O here: [`PodMeta`] is plain data (built by `pods.rs` from the apiserver's metadata-only
//! LIST, or by tests), [`ActiveMap`] and [`KnownDags`] are plain data (built by `db.rs`).
//!
//! Memory: a run holds one [`PodMeta`] per listed pod; the maps of TI rows are keyed by keys
//! borrowed from those pods (`&TiKey`, see [`Key`]), so 150,000 keys are not held twice.

use std::borrow::{Borrow, Cow};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hash;
use std::sync::Arc;

use serde::Serialize;
use tikey::stamp::{self, Stamp};
use tikey::{LabelError, TiKey, labels};

pub use crate::uid::Uid;

/// A task instance that is not in a terminal state, as read from `task_instance`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveTi {
    /// `task_instance.try_number` (NULL, possible in Airflow 2.x, reads as 0).
    pub try_number: i64,
    /// `task_instance.state`; `None` is SQL NULL (a cleared or not yet scheduled TI). Airflow's own
    /// states are borrowed (no allocation per row); a state nobody knows is kept as read.
    pub state: Option<Cow<'static, str>>,
    /// More than one active TI row normalizes to this key (`make_safe_label_value` cuts long ids
    /// to 53 characters plus 9 hex digits of an md5): which one a pod belongs to cannot be told,
    /// so its pods are kept.
    pub ambiguous: bool,
}

impl ActiveTi {
    pub fn new(try_number: i64, state: Option<&str>) -> ActiveTi {
        ActiveTi {
            try_number,
            state: state.map(intern_state),
            ambiguous: false,
        }
    }
}

/// Airflow's TaskInstanceState values (2.x and 3.x) as static strings.
const KNOWN_STATES: &[&str] = &[
    "deferred",
    "failed",
    "queued",
    "removed",
    "restarting",
    "running",
    "scheduled",
    "sensing",
    "shutdown",
    "skipped",
    "success",
    "up_for_reschedule",
    "up_for_retry",
    "upstream_failed",
];

fn intern_state(state: &str) -> Cow<'static, str> {
    match KNOWN_STATES.iter().find(|k| **k == state) {
        Some(k) => Cow::Borrowed(k),
        None => Cow::Owned(state.to_owned()),
    }
}

/// What the maps of TI rows are keyed by: an owned [`TiKey`] (tests, library callers) or a `&TiKey`
/// borrowed from the listed pods (the sweep: a row is kept only when a pod names its key, and the
/// key's strings are the pod's own). Both are looked up by `&TiKey`.
pub trait Key: Borrow<TiKey> + Hash + Eq {}
impl<K: Borrow<TiKey> + Hash + Eq> Key for K {}

/// Every active TI by its label-form key.
pub type ActiveMap<K = TiKey> = HashMap<K, ActiveTi>;

/// Adds a TI row to the map. A second row with the same label-form key makes the key ambiguous
/// (docs/design.md §5): its pods are zombies only when every TI behind it is terminal, i.e. when none
/// of them is in the map at all.
pub fn insert_active<K: Key>(map: &mut ActiveMap<K>, key: K, ti: ActiveTi) {
    match map.entry(key) {
        std::collections::hash_map::Entry::Vacant(v) => {
            v.insert(ti);
        }
        std::collections::hash_map::Entry::Occupied(mut o) => {
            o.get_mut().ambiguous = true;
        }
    }
}

/// The terminal rows behind one key, read for the candidates only (docs/design.md §5, rows 9–10):
/// positive evidence that the task try a pod ran under is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndedTi {
    /// The lowest `try_number` of the terminal rows behind the key (more than one when ids
    /// collide after the 53-character cut); `None` when one of them is NULL. A pod is a zombie
    /// by row 9 only when every row behind its key is terminal at its try or later.
    pub min_try: Option<i64>,
}

/// The candidates' terminal rows by label-form key.
pub type EndedMap<K = TiKey> = HashMap<K, EndedTi>;

/// Adds a terminal row: the key keeps the lowest try, and a NULL try wins (it proves nothing).
pub fn insert_ended<K: Key>(map: &mut EndedMap<K>, key: K, try_number: Option<i64>) {
    map.entry(key)
        .and_modify(|e| {
            e.min_try = match (e.min_try, try_number) {
                (Some(a), Some(b)) => Some(a.min(b)),
                _ => None,
            }
        })
        .or_insert(EndedTi {
            min_try: try_number,
        });
}

/// What the database says, as the decision reads it: the active rows (every one, or at a
/// re-read the candidates'), and the candidates' terminal rows.
#[derive(Debug)]
pub struct Tis<K = TiKey> {
    pub active: ActiveMap<K>,
    pub ended: EndedMap<K>,
}

impl<K> Default for Tis<K> {
    fn default() -> Self {
        Tis {
            active: HashMap::new(),
            ended: HashMap::new(),
        }
    }
}

impl<K: Key> Tis<K> {
    /// Adds one row of any state: a terminal one to [`Tis::ended`], any other (NULL and states
    /// nobody knows included) to [`Tis::active`].
    pub fn insert(&mut self, key: K, try_number: Option<i64>, state: Option<&str>) {
        match state {
            Some(s) if crate::db::TERMINAL_STATES.contains(&s) => {
                insert_ended(&mut self.ended, key, try_number)
            }
            _ => insert_active(
                &mut self.active,
                key,
                ActiveTi::new(try_number.unwrap_or(0), state),
            ),
        }
    }
}

/// The DAGs the database knows (`dag.dag_id`, normalized into label form). A pod whose dag_id is
/// not among them belongs to another Airflow, or the sweeper reads the wrong database (row 8).
pub type KnownDags = HashSet<String>;

/// The webhook's stamp on a pod, as rows 2 and 5 read it: settled once when the pod is read, so
/// the stamp's own copy of the key is not kept next to the labels' (50,000 pods fit in less).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StampCheck {
    /// No stamp annotation at all: created while the webhook was absent, down or bypassed (row 2).
    Unstamped,
    /// A well-formed stamp whose ti-key and try-number are the labels' own.
    Agrees,
    /// A stamp that is malformed, or names another key or try than the labels do (row 5), or sits
    /// on a pod whose labels name no TI (row 4 decides those first).
    Disagrees,
}

/// What the sweeper knows about one pod: its metadata, already parsed, in a compact form (the run
/// holds one per listed pod).
#[derive(Debug, Clone)]
pub struct PodMeta {
    /// Shared by the pods of one namespace.
    pub namespace: Arc<str>,
    pub name: String,
    pub uid: Uid,
    /// The TI key and try number read from the labels ([`TiKey::from_pod_labels`]).
    pub identity: Result<(TiKey, i64), LabelError>,
    /// `already_checked=True`: KPO's own cleanup has seen this pod.
    pub already_checked: bool,
    /// The webhook's stamp, checked against the labels.
    pub stamp: StampCheck,
    /// The stamp's `admitted-at`, when the stamp is well formed.
    pub admitted_at: Option<i64>,
    /// `kpo-sweeper.io/created-by` as written, even when the rest of the stamp is malformed (shared
    /// by the pods of one creator when read from the apiserver).
    pub created_by: Option<Arc<str>>,
    /// Has at least one ownerReference.
    pub owned: bool,
    /// creationTimestamp, Unix seconds.
    pub created_at: Option<i64>,
    /// deletionTimestamp, Unix seconds.
    pub deletion_at: Option<i64>,
}

impl PodMeta {
    /// Builds the parsed form from raw labels and annotations (only the keys the sweeper reads
    /// matter; others are ignored).
    #[allow(clippy::too_many_arguments)]
    pub fn from_parts(
        namespace: impl Into<Arc<str>>,
        name: impl Into<String>,
        uid: &str,
        labels: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
        owned: bool,
        created_at: Option<i64>,
        deletion_at: Option<i64>,
    ) -> PodMeta {
        PodMeta::from_lookups(
            namespace.into(),
            name.into(),
            Uid::new(uid),
            |k| labels.get(k).map(String::as_str),
            |k| annotations.get(k).map(String::as_str),
            |c: &str| Arc::from(c),
            owned,
            created_at,
            deletion_at,
        )
    }

    /// [`PodMeta::from_parts`] over label and annotation lookups (`label(key)` is the value), for
    /// a reader that never builds the maps; `share` turns the creator into the `Arc` the pods of
    /// one creator share.
    #[allow(clippy::too_many_arguments)]
    pub fn from_lookups<'l, 'a>(
        namespace: Arc<str>,
        name: String,
        uid: Uid,
        label: impl Fn(&'static str) -> Option<&'l str>,
        annotation: impl Fn(&'static str) -> Option<&'a str>,
        share: impl FnOnce(&str) -> Arc<str>,
        owned: bool,
        created_at: Option<i64>,
        deletion_at: Option<i64>,
    ) -> PodMeta {
        let identity = TiKey::from_label_lookup(&label);
        let (stamp, admitted_at) = match Stamp::from_lookup(&annotation) {
            Ok(None) => (StampCheck::Unstamped, None),
            Ok(Some(s)) => {
                let agrees = match &identity {
                    Ok((key, try_number)) => {
                        s.ti_key.as_ref() == Some(key) && s.try_number == Some(*try_number)
                    }
                    Err(_) => false,
                };
                let check = if agrees {
                    StampCheck::Agrees
                } else {
                    StampCheck::Disagrees
                };
                (check, s.admitted_at)
            }
            Err(_) => (StampCheck::Disagrees, None),
        };
        PodMeta {
            namespace,
            name,
            uid,
            identity,
            already_checked: label(labels::ALREADY_CHECKED) == Some(labels::ALREADY_CHECKED_VALUE),
            stamp,
            admitted_at,
            created_by: annotation(stamp::CREATED_BY).map(share),
            owned,
            created_at,
            deletion_at,
        }
    }

    /// The label-form key and try number, when the labels name a TI.
    pub fn key(&self) -> Option<(&TiKey, i64)> {
        self.identity.as_ref().ok().map(|(k, t)| (k, *t))
    }
}

/// What `--unstamped` says about pods that carry no stamp (created while the webhook was absent or
/// down, or before it was installed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Unstamped {
    /// Never touch them: they are reported `keep`/`unstamped` (row 2) and counted, since neither
    /// their creator nor their admission time can be checked. Many of them mean the webhook is
    /// being bypassed.
    #[default]
    Keep,
    /// Judge them on their labels alone, like stamped pods; `--owner` cannot be checked for them and
    /// is not applied to them (the run warns).
    Sweep,
}

/// The decision's configuration (the scope flags and the knobs of §5's table).
#[derive(Debug, Clone, Default)]
pub struct DecideConfig {
    /// Namespaces in scope; `None` is `--all-namespaces`.
    pub namespaces: Option<HashSet<String>>,
    /// `--owner`: the identities whose pods this deployment sweeps. Empty: not configured.
    pub owners: HashSet<String>,
    pub unstamped: Unstamped,
    /// `--min-age`, seconds.
    pub min_age_secs: i64,
    pub strict_retry: bool,
    /// `--sweep-unknown-ti-after`, seconds: an `unknown-ti` pod (row 11) older than this is a
    /// zombie. `None` (the default): such pods are kept.
    pub sweep_unknown_ti_after: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Skip,
    Keep,
    Zombie,
}

/// The report's reason strings: docs/design.md §5's rows, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    OutOfScope,
    Unstamped,
    Owned,
    Unidentifiable,
    InconsistentStamp,
    TooYoung,
    Terminating,
    UnknownDag,
    NoActiveTi,
    NewerThanDb,
    UnknownTi,
    Checked,
    Active,
    Superseded,
    MayReattach,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::OutOfScope => "out-of-scope",
            Reason::Unstamped => "unstamped",
            Reason::Owned => "owned",
            Reason::Unidentifiable => "unidentifiable",
            Reason::InconsistentStamp => "inconsistent-stamp",
            Reason::TooYoung => "too-young",
            Reason::Terminating => "terminating",
            Reason::UnknownDag => "unknown-dag",
            Reason::NoActiveTi => "no-active-ti",
            Reason::NewerThanDb => "newer-than-db",
            Reason::UnknownTi => "unknown-ti",
            Reason::Checked => "checked",
            Reason::Active => "active",
            Reason::Superseded => "superseded",
            Reason::MayReattach => "may-reattach",
        }
    }

    /// The row of docs/design.md §5's table (1-based).
    pub fn row(self) -> u8 {
        self as u8 + 1
    }

    /// Whether a pod with this reason was judged against the database (row 9 or later): the
    /// circuit breaker's fraction counts only these pods.
    pub fn judged_against_db(self) -> bool {
        self.row() >= Reason::NoActiveTi.row()
    }
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Skip => "skip",
            Verdict::Keep => "keep",
            Verdict::Zombie => "zombie",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    pub reason: Reason,
    /// The pod is past its deletionTimestamp (stuck in Terminating: its kubelet is gone). A zombie
    /// in this state is deleted with grace 0, whatever `--grace-period` says.
    pub stuck_terminating: bool,
}

impl Decision {
    fn new(verdict: Verdict, reason: Reason) -> Decision {
        Decision {
            verdict,
            reason,
            stuck_terminating: false,
        }
    }

    pub fn is_zombie(&self) -> bool {
        self.verdict == Verdict::Zombie
    }
}

/// Which try numbers have a pod, per namespace and key: row 14 asks whether "a pod labelled with the
/// active try exists for the key". Only pods that pass rows 1–5 (in scope, stamped or swept, not
/// owned, identifiable, consistent) count, and only in the same namespace (KPO's reattach searches
/// its own namespace).
#[derive(Debug)]
pub struct SiblingIndex<'a> {
    pods: &'a [PodMeta],
    /// The indexes of the pods that count, sorted by (namespace, key, try): 4 bytes a pod (a hash
    /// set of those triples took 32 and more). Row 14 is asked only of pods behind their TI's try,
    /// so its binary search is rare.
    sorted: Vec<u32>,
}

impl<'a> SiblingIndex<'a> {
    pub fn build(pods: &'a [PodMeta], cfg: &DecideConfig) -> SiblingIndex<'a> {
        let mut sorted: Vec<u32> = pods
            .iter()
            .enumerate()
            .filter(|(_, pod)| identify(pod, cfg).is_ok())
            .map(|(i, _)| u32::try_from(i).expect("fewer than 2^32 pods"))
            .collect();
        sorted.sort_unstable_by(|&a, &b| {
            Self::entry(&pods[a as usize]).cmp(&Self::entry(&pods[b as usize]))
        });
        SiblingIndex { pods, sorted }
    }

    /// (namespace, key, try) of a pod rows 1–5 let through (its labels name a TI).
    fn entry(pod: &PodMeta) -> Option<(&str, &TiKey, i64)> {
        pod.key().map(|(k, t)| (&*pod.namespace, k, t))
    }

    pub fn has(&self, namespace: &str, key: &TiKey, try_number: i64) -> bool {
        let want = Some((namespace, key, try_number));
        self.sorted
            .binary_search_by(|&i| Self::entry(&self.pods[i as usize]).cmp(&want))
            .is_ok()
    }
}

/// Rows 1–5: whether the pod is this run's to judge, and which TI it belongs to.
fn identify<'p>(pod: &'p PodMeta, cfg: &DecideConfig) -> Result<(&'p TiKey, i64), Decision> {
    use Reason::*;
    use Verdict::*;
    // Row 1: scope (namespace, then creator).
    if let Some(namespaces) = &cfg.namespaces
        && !namespaces.contains(&*pod.namespace)
    {
        return Err(Decision::new(Skip, OutOfScope));
    }
    let unstamped = pod.stamp == StampCheck::Unstamped;
    if !unstamped && !cfg.owners.is_empty() {
        match &pod.created_by {
            Some(creator) if cfg.owners.contains(&**creator) => {}
            _ => return Err(Decision::new(Skip, OutOfScope)),
        }
    }
    // Row 2: no stamp at all: the webhook was bypassed or absent when the pod was created.
    if unstamped && cfg.unstamped == self::Unstamped::Keep {
        return Err(Decision::new(Keep, Reason::Unstamped));
    }
    // Row 3: owned by a controller (Job, SparkApplication, …): its owner manages its lifetime.
    if pod.owned {
        return Err(Decision::new(Skip, Owned));
    }
    // Row 4: the labels must name a TI.
    let Some((key, try_number)) = pod.key() else {
        return Err(Decision::new(Skip, Unidentifiable));
    };
    // Row 5: a stamp must agree with the labels it was made from.
    if pod.stamp == StampCheck::Disagrees {
        return Err(Decision::new(Skip, InconsistentStamp));
    }
    Ok((key, try_number))
}

/// The states in which an Airflow process holds (or will resume and hold) the pod.
fn is_held(state: Option<&str>) -> bool {
    matches!(state, Some("running" | "deferred"))
}

/// When the pod came to be, for row 6: the later of the stamp's `admitted-at` (the webhook's clock,
/// and an annotation anyone with `pods/patch` can rewrite) and `creationTimestamp` (the
/// apiserver's). A forged old `admitted-at` cannot make a new pod look old. `None`: unknown.
pub fn born_at(pod: &PodMeta) -> Option<i64> {
    pod.admitted_at.max(pod.created_at)
}

/// The active TI a pod is judged against (rows 12–15): the one its key names, else, for a mapped key, the
/// same dag/task/run unmapped. A pod template copied from a mapped task's pod keeps a stale
/// `map_index` label on an unmapped task's pod, since KPO merges its labels over the template's.
pub fn active_for<'m, K: Key>(active: &'m ActiveMap<K>, key: &TiKey) -> Option<&'m ActiveTi> {
    if let Some(ti) = active.get(key) {
        return Some(ti);
    }
    if key.map_index == -1 {
        return None;
    }
    active.get(&unmapped(key))
}

/// The same dag/task/run unmapped (`map_index` -1): what a mapped key falls back to.
pub fn unmapped(key: &TiKey) -> TiKey {
    TiKey {
        map_index: -1,
        ..key.clone()
    }
}

/// The terminal rows a pod is judged against when its TI is not active (rows 9–10): its key's,
/// else, for a mapped key with no row, the same dag/task/run unmapped.
pub fn ended_for<'m, K: Key>(ended: &'m EndedMap<K>, key: &TiKey) -> Option<&'m EndedTi> {
    if let Some(e) = ended.get(key) {
        return Some(e);
    }
    if key.map_index == -1 {
        return None;
    }
    ended.get(&unmapped(key))
}

/// docs/design.md §5 (version 4), first match wins. `now` is Unix seconds. A pod is a zombie only on
/// positive evidence from `tis` that its own task try is over: a missing row is not evidence.
pub fn decide<K: Key>(
    pod: &PodMeta,
    tis: &Tis<K>,
    dags: &KnownDags,
    siblings: &SiblingIndex<'_>,
    now: i64,
    cfg: &DecideConfig,
) -> Decision {
    use Reason::*;
    use Verdict::*;
    let (key, pod_try) = match identify(pod, cfg) {
        Ok(id) => id,
        Err(d) => return d,
    };
    // Row 6: too young (unknown age is young).
    match born_at(pod) {
        Some(t) if now.saturating_sub(t) >= cfg.min_age_secs => {}
        _ => return Decision::new(Keep, TooYoung),
    }
    // Row 7: someone asked for a graceful delete and Kubernetes is still honouring it.
    let stuck_terminating = match pod.deletion_at {
        Some(t) if t > now => return Decision::new(Keep, Terminating),
        Some(_) => true,
        None => false,
    };
    // Row 8: the database knows no such DAG: the wrong database (a fresh one, another Airflow's)
    // or another Airflow's pod. Every pod is then kept, whatever the namespace's size. A database
    // with the same DAGs (staging, a restored backup) passes here and is met by rows 9–11.
    if !dags.contains(&key.dag_id) {
        return Decision::new(Keep, UnknownDag);
    }
    let zombie = |reason| Decision {
        verdict: Zombie,
        reason,
        stuck_terminating,
    };
    // Rows 9–11: no active TI. Only a terminal row at the pod's try or later proves the try over.
    let Some(ti) = active_for(&tis.active, key) else {
        return match ended_for(&tis.ended, key) {
            // Row 9: every row behind the key is terminal, at the pod's try or later.
            Some(e) if e.min_try.is_some_and(|t| t >= pod_try) => zombie(NoActiveTi),
            // Row 10: the row's try is below the pod's, or NULL: the database is behind the
            // cluster (a restored backup, a lagging replica).
            Some(_) => Decision::new(Keep, NewerThanDb),
            // Row 11: no row at all (run deleted, rows purged, or not this Airflow's database);
            // a zombie only when the admin said rows are purged (--sweep-unknown-ti-after).
            None => match (cfg.sweep_unknown_ti_after, born_at(pod)) {
                (Some(after), Some(t)) if now.saturating_sub(t) >= after => zombie(UnknownTi),
                _ => Decision::new(Keep, UnknownTi),
            },
        };
    };
    // Two active TIs share the key: which one holds this pod cannot be told. Keep.
    if ti.ambiguous {
        return Decision::new(Keep, Active);
    }
    // Row 12: KPO's cleanup has seen the pod and no Airflow process holds it (KPO never adopts a
    // checked pod).
    if pod.already_checked && !is_held(ti.state.as_deref()) {
        return zombie(Checked);
    }
    // Row 13: the pod's try is the TI's current one (or newer: Airflow 2.0–2.9 lowered the column
    // by one while deferred).
    if pod_try >= ti.try_number {
        return Decision::new(Keep, Active);
    }
    // Row 14: the current try has a pod of its own, so nothing adopted this one.
    if siblings.has(&pod.namespace, key, ti.try_number) {
        return zombie(Superseded);
    }
    // Row 15: an older try alone may have been reattached to.
    if cfg.strict_retry {
        zombie(MayReattach)
    } else {
        Decision::new(Keep, MayReattach)
    }
}

#[cfg(test)]
mod tests;
