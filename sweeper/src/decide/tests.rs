//! docs/design.md §5, row by row. Test names carry what Airflow's own source says about `try_number`
//! (read in apache-airflow 3.3.2 with apache-airflow-providers-cncf-kubernetes 10.25.0, in 2.10.5,
//! and in the 2.2–2.9 `TaskInstance._defer_task`):
//! * 2.10+/3.x `DagRun.schedule_tis` bumps the column by one when it moves a TI to `scheduled`
//!   (not from `up_for_reschedule`); queue, start, defer, resume, retry and clear never touch it;
//! * `clear_task_instances` sets a running TI to `restarting` and any other to NULL, try unchanged;
//! * KPO labels the pod with `ti.try_number`, the try it runs under, and its reattach search
//!   (`_build_find_pod_label_selector`) omits `try_number` and requires `already_checked!=True`;
//! * 2.2–2.9 bumped the column at start and `_defer_task` did `self._try_number -= 1`.
use super::*;

const NOW: i64 = 1_800_000_000;
const HOUR: i64 = 3600;
const OWNER: &str = "system:serviceaccount:airflow:airflow-worker";

#[derive(Clone)]
struct P {
    ns: String,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    owned: bool,
    created: Option<i64>,
    deletion: Option<i64>,
}

fn pod(dag: &str, task: &str, run: &str, try_number: i64) -> P {
    let mut labels = BTreeMap::new();
    for (k, v) in [
        ("dag_id", dag),
        ("task_id", task),
        ("run_id", run),
        ("kubernetes_pod_operator", "True"),
    ] {
        labels.insert(k.to_owned(), v.to_owned());
    }
    labels.insert("try_number".to_owned(), try_number.to_string());
    P {
        ns: "airflow".to_owned(),
        labels,
        annotations: BTreeMap::new(),
        owned: false,
        created: Some(NOW - HOUR),
        deletion: None,
    }
    .stamped(OWNER)
}

fn zdag(task: &str, try_number: i64) -> P {
    pod(
        "kpo_zombie_dag",
        task,
        "manual__2025-12-02T000000-abcdef012",
        try_number,
    )
}

impl P {
    /// The webhook's stamp, made from the current labels.
    fn stamped(mut self, creator: &str) -> P {
        let (key, t) = TiKey::from_pod_labels(&self.labels).expect("identifiable");
        let s = Stamp {
            ti_key: Some(key),
            try_number: Some(t),
            admitted_at: self.created,
            created_by: Some(creator.to_owned()),
        };
        self.annotations = s.to_annotations();
        self
    }
    fn unstamped(mut self) -> P {
        self.annotations.clear();
        self
    }
    fn label(mut self, k: &str, v: &str) -> P {
        self.labels.insert(k.to_owned(), v.to_owned());
        self
    }
    fn unlabel(mut self, k: &str) -> P {
        self.labels.remove(k);
        self
    }
    fn annotate(mut self, k: &str, v: &str) -> P {
        self.annotations.insert(k.to_owned(), v.to_owned());
        self
    }
    fn map_index(self, i: i64) -> P {
        self.label("map_index", &i.to_string()).restamp()
    }
    fn restamp(self) -> P {
        let creator = self
            .annotations
            .get(stamp::CREATED_BY)
            .cloned()
            .unwrap_or_else(|| OWNER.to_owned());
        self.stamped(&creator)
    }
    fn checked(self) -> P {
        self.label("already_checked", "True")
    }
    fn ns(mut self, ns: &str) -> P {
        self.ns = ns.to_owned();
        self
    }
    fn owned(mut self) -> P {
        self.owned = true;
        self
    }
    fn created(mut self, t: Option<i64>) -> P {
        self.created = t;
        self
    }
    fn deleting(mut self, t: i64) -> P {
        self.deletion = Some(t);
        self
    }
    fn build(&self) -> PodMeta {
        PodMeta::from_parts(
            self.ns.clone(),
            "pod",
            "uid",
            &self.labels,
            &self.annotations,
            self.owned,
            self.created,
            self.deletion,
        )
    }
    fn key(&self) -> TiKey {
        TiKey::from_pod_labels(&self.labels).unwrap().0
    }
}

fn ti(try_number: i64, state: Option<&str>) -> ActiveTi {
    ActiveTi::new(try_number, state)
}

fn cfg() -> DecideConfig {
    DecideConfig {
        namespaces: Some(["airflow".to_owned()].into()),
        owners: HashSet::new(),
        unstamped: Unstamped::Keep,
        min_age_secs: 300,
        strict_retry: false,
        sweep_unknown_ti_after: None,
    }
}

/// Decides `target` among `others` (the sibling pods) against `active`. Every pod whose key is
/// not active has ended: the database holds its TI's row, terminal, at the pod's try (row 9's
/// evidence); [`judge_rows`] says otherwise.
fn judge_among(
    target: &P,
    others: &[&P],
    active: &[(TiKey, ActiveTi)],
    cfg: &DecideConfig,
) -> Decision {
    let mut pods = vec![target.build()];
    pods.extend(others.iter().map(|p| p.build()));
    // Every DAG a pod here names is known to the database, unless a test says otherwise.
    let dags: KnownDags = pods
        .iter()
        .filter_map(|p| p.key().map(|(k, _)| k.dag_id.clone()))
        .collect();
    let ended: Vec<(TiKey, Option<i64>)> = pods
        .iter()
        .filter_map(|p| p.key())
        .filter(|(k, _)| !active.iter().any(|(a, _)| a == *k))
        .map(|(k, t)| (k.clone(), Some(t)))
        .collect();
    judge_with(&pods, active, &ended, &dags, cfg)
}

fn judge_with(
    pods: &[PodMeta],
    active: &[(TiKey, ActiveTi)],
    ended: &[(TiKey, Option<i64>)],
    dags: &KnownDags,
    cfg: &DecideConfig,
) -> Decision {
    let mut tis = Tis::default();
    for (k, t) in active {
        insert_active(&mut tis.active, k.clone(), t.clone());
    }
    for (k, t) in ended {
        insert_ended(&mut tis.ended, k.clone(), *t);
    }
    let siblings = SiblingIndex::build(pods, cfg);
    decide(&pods[0], &tis, dags, &siblings, NOW, cfg)
}

/// Decides `target` alone against exactly these active and terminal rows.
fn judge_rows(
    target: &P,
    active: &[(TiKey, ActiveTi)],
    ended: &[(TiKey, Option<i64>)],
    cfg: &DecideConfig,
) -> Decision {
    let pods = vec![target.build()];
    let dags: KnownDags = pods
        .iter()
        .filter_map(|p| p.key().map(|(k, _)| k.dag_id.clone()))
        .collect();
    judge_with(&pods, active, ended, &dags, cfg)
}

fn judge(target: &P, active: &[(TiKey, ActiveTi)]) -> Decision {
    judge_among(target, &[], active, &cfg())
}

fn is(d: Decision, verdict: Verdict, reason: Reason) {
    assert_eq!((d.verdict, d.reason), (verdict, reason), "{d:?}");
}

// ---- row 1: out-of-scope ----

#[test]
fn row1_namespace_not_in_scope_is_skipped_even_without_an_active_ti() {
    is(
        judge(&zdag("t", 1).ns("other"), &[]),
        Verdict::Skip,
        Reason::OutOfScope,
    );
}

#[test]
fn row1_all_namespaces_puts_every_namespace_in_scope() {
    let c = DecideConfig {
        namespaces: None,
        ..cfg()
    };
    is(
        judge_among(&zdag("t", 1).ns("other"), &[], &[], &c),
        Verdict::Zombie,
        Reason::NoActiveTi,
    );
}

#[test]
fn row1_pod_created_by_another_deployment_is_skipped_when_owner_is_set() {
    let c = DecideConfig {
        owners: [OWNER.to_owned()].into(),
        ..cfg()
    };
    let theirs = zdag("t", 1).stamped("system:serviceaccount:other:airflow-worker");
    is(
        judge_among(&theirs, &[], &[], &c),
        Verdict::Skip,
        Reason::OutOfScope,
    );
    // Ours, with the same key, is judged.
    is(
        judge_among(&zdag("t", 1), &[], &[], &c),
        Verdict::Zombie,
        Reason::NoActiveTi,
    );
}

#[test]
fn row1_stamp_without_creator_is_out_of_scope_when_owner_is_set() {
    let c = DecideConfig {
        owners: [OWNER.to_owned()].into(),
        ..cfg()
    };
    let mut p = zdag("t", 1);
    p.annotations.remove(stamp::CREATED_BY);
    is(
        judge_among(&p, &[], &[], &c),
        Verdict::Skip,
        Reason::OutOfScope,
    );
}

#[test]
fn row2_unstamped_keep_never_touches_a_pod_the_webhook_did_not_see_and_says_so() {
    is(
        judge(&zdag("t", 1).unstamped(), &[]),
        Verdict::Keep,
        Reason::Unstamped,
    );
    // Even when --owner is set: the pod is not another owner's, it is unknown (row 2, not row 1).
    let c = DecideConfig {
        owners: [OWNER.to_owned()].into(),
        ..cfg()
    };
    is(
        judge_among(&zdag("t", 1).unstamped(), &[], &[], &c),
        Verdict::Keep,
        Reason::Unstamped,
    );
    // Out of scope still wins (row 1 before row 2).
    is(
        judge(&zdag("t", 1).unstamped().ns("other"), &[]),
        Verdict::Skip,
        Reason::OutOfScope,
    );
}

#[test]
fn row2_unstamped_sweep_judges_from_labels_and_waives_owner() {
    let c = DecideConfig {
        unstamped: Unstamped::Sweep,
        owners: [OWNER.to_owned()].into(),
        ..cfg()
    };
    let p = zdag("t", 1).unstamped();
    is(
        judge_among(&p, &[], &[], &c),
        Verdict::Zombie,
        Reason::NoActiveTi,
    );
    // Still live when its TI runs.
    is(
        judge_among(&p, &[], &[(p.key(), ti(1, Some("running")))], &c),
        Verdict::Keep,
        Reason::Active,
    );
}

// ---- row 3: owned ----

#[test]
fn row3_pod_with_owner_reference_is_skipped_even_without_an_active_ti() {
    is(
        judge(&zdag("t", 1).owned(), &[]),
        Verdict::Skip,
        Reason::Owned,
    );
}

// ---- row 4: unidentifiable ----

#[test]
fn row4_provider_before_3_1_labelled_execution_date_is_unidentifiable() {
    let p = zdag("t", 1)
        .unstamped()
        .unlabel("run_id")
        .label("execution_date", "2024-01-01T0000000000-abcdef012");
    let c = DecideConfig {
        unstamped: Unstamped::Sweep,
        ..cfg()
    };
    is(
        judge_among(&p, &[], &[], &c),
        Verdict::Skip,
        Reason::Unidentifiable,
    );
}

#[test]
fn row4_non_integer_try_or_map_index_is_unidentifiable() {
    let c = DecideConfig {
        unstamped: Unstamped::Sweep,
        ..cfg()
    };
    let bad_try = zdag("t", 1).unstamped().label("try_number", "one");
    is(
        judge_among(&bad_try, &[], &[], &c),
        Verdict::Skip,
        Reason::Unidentifiable,
    );
    let bad_map = zdag("t", 1).unstamped().label("map_index", "x");
    is(
        judge_among(&bad_map, &[], &[], &c),
        Verdict::Skip,
        Reason::Unidentifiable,
    );
    let no_task = zdag("t", 1).unstamped().unlabel("task_id");
    is(
        judge_among(&no_task, &[], &[], &c),
        Verdict::Skip,
        Reason::Unidentifiable,
    );
}

// ---- row 5: inconsistent-stamp ----

#[test]
fn row5_labels_changed_after_admission_make_the_stamp_inconsistent() {
    // Relabelled to another task after the webhook stamped it.
    let p = zdag("t", 1).label("task_id", "other");
    is(judge(&p, &[]), Verdict::Skip, Reason::InconsistentStamp);
    // Relabelled to another try.
    let p = zdag("t", 1).label("try_number", "2");
    is(judge(&p, &[]), Verdict::Skip, Reason::InconsistentStamp);
    // Stamped without a key (the webhook could not identify it) but identifiable now.
    let mut p = zdag("t", 1);
    p.annotations.remove(stamp::TI_KEY);
    is(judge(&p, &[]), Verdict::Skip, Reason::InconsistentStamp);
}

#[test]
fn row5_malformed_stamp_is_inconsistent() {
    let p = zdag("t", 1).annotate(stamp::TRY_NUMBER, "two");
    is(judge(&p, &[]), Verdict::Skip, Reason::InconsistentStamp);
    let p = zdag("t", 1).annotate(stamp::TI_KEY, "a/b");
    is(judge(&p, &[]), Verdict::Skip, Reason::InconsistentStamp);
}

#[test]
fn row5_consistent_stamp_with_a_mapped_key_passes() {
    let p = zdag("mapped_kpo_task", 1).map_index(0);
    is(judge(&p, &[]), Verdict::Zombie, Reason::NoActiveTi);
}

// ---- row 6: too-young ----

#[test]
fn row6_young_by_stamp_epoch_is_kept_even_when_creation_is_old() {
    let p = zdag("t", 1).annotate(stamp::ADMITTED_AT, &(NOW - 10).to_string());
    is(judge(&p, &[]), Verdict::Keep, Reason::TooYoung);
}

#[test]
fn row6_young_by_creation_timestamp_without_stamp() {
    let c = DecideConfig {
        unstamped: Unstamped::Sweep,
        ..cfg()
    };
    let p = zdag("t", 1).unstamped().created(Some(NOW - 299));
    is(
        judge_among(&p, &[], &[], &c),
        Verdict::Keep,
        Reason::TooYoung,
    );
    let p = zdag("t", 1).unstamped().created(Some(NOW - 300));
    is(
        judge_among(&p, &[], &[], &c),
        Verdict::Zombie,
        Reason::NoActiveTi,
    );
    // No timestamp at all: treated as young.
    let p = zdag("t", 1).unstamped().created(None);
    is(
        judge_among(&p, &[], &[], &c),
        Verdict::Keep,
        Reason::TooYoung,
    );
}

#[test]
fn row6_min_age_zero_still_keeps_a_pod_from_the_future() {
    let c = DecideConfig {
        min_age_secs: 0,
        ..cfg()
    };
    let p = zdag("t", 1).created(Some(NOW + 5)).restamp();
    is(
        judge_among(&p, &[], &[], &c),
        Verdict::Keep,
        Reason::TooYoung,
    );
}

// ---- row 7: terminating ----

#[test]
fn row7_deletion_timestamp_in_the_future_is_kept_terminating() {
    let p = zdag("t", 1).deleting(NOW + 86_000);
    let d = judge(&p, &[]);
    is(d, Verdict::Keep, Reason::Terminating);
}

#[test]
fn row7_zombie_past_its_deletion_timestamp_is_stuck_and_forced() {
    let p = zdag("t", 1).deleting(NOW - 1);
    let d = judge(&p, &[]);
    is(d, Verdict::Zombie, Reason::NoActiveTi);
    assert!(d.stuck_terminating);
    // Exactly at the deadline counts as past.
    let d = judge(&zdag("t", 1).deleting(NOW), &[]);
    is(d, Verdict::Zombie, Reason::NoActiveTi);
    assert!(d.stuck_terminating);
}

#[test]
fn row7_live_pod_past_its_deletion_timestamp_is_still_kept() {
    let p = zdag("t", 1).deleting(NOW - 1);
    is(
        judge(&p, &[(p.key(), ti(1, Some("running")))]),
        Verdict::Keep,
        Reason::Active,
    );
}

// ---- row 9: no-active-ti (the upstream kpo_zombie_dag scenario) ----

#[test]
fn row9_upstream_zombie_task_success_with_pod_still_running_is_zombie() {
    // zombie_kpo_task's TI is `success`: terminal, so not in the active map.
    let zombie = zdag("zombie_kpo_task", 1);
    let healthy = zdag("healthy_kpo_task", 1);
    let active = [(healthy.key(), ti(1, Some("running")))];
    let d = judge(&zombie, &active);
    is(d, Verdict::Zombie, Reason::NoActiveTi);
    assert!(!d.stuck_terminating);
    is(judge(&healthy, &active), Verdict::Keep, Reason::Active);
}

#[test]
fn row9_upstream_mapped_task_map_index_0_finished_and_1_running() {
    let m0 = zdag("mapped_kpo_task", 1).map_index(0);
    let m1 = zdag("mapped_kpo_task", 1).map_index(1);
    let active = [(m1.key(), ti(1, Some("running")))];
    is(judge(&m0, &active), Verdict::Zombie, Reason::NoActiveTi);
    is(judge(&m1, &active), Verdict::Keep, Reason::Active);
}

// ---- row 12: checked ----

#[test]
fn row12_checked_pod_with_ti_up_for_retry_is_zombie_since_kpo_never_adopts_checked_pods() {
    // 2.10+/3.x: up_for_retry keeps the column at the try that ran (== the pod's label).
    let p = zdag("t", 1).checked();
    is(
        judge(&p, &[(p.key(), ti(1, Some("up_for_retry")))]),
        Verdict::Zombie,
        Reason::Checked,
    );
}

#[test]
fn row12_checked_pod_with_ti_cleared_null_state_is_zombie() {
    // clear_task_instances: state NULL, try_number unchanged.
    let p = zdag("t", 1).checked();
    is(
        judge(&p, &[(p.key(), ti(1, None))]),
        Verdict::Zombie,
        Reason::Checked,
    );
}

#[test]
fn row12_checked_pod_with_next_try_scheduled_or_restarting_is_zombie() {
    let p = zdag("t", 1).checked();
    // schedule_tis bumped the column to label + 1.
    is(
        judge(&p, &[(p.key(), ti(2, Some("scheduled")))]),
        Verdict::Zombie,
        Reason::Checked,
    );
    is(
        judge(&p, &[(p.key(), ti(2, Some("queued")))]),
        Verdict::Zombie,
        Reason::Checked,
    );
    // clear of a running TI: restarting, same try.
    is(
        judge(&p, &[(p.key(), ti(1, Some("restarting")))]),
        Verdict::Zombie,
        Reason::Checked,
    );
}

#[test]
fn row12_checked_pod_with_ti_running_is_kept_kpo_cleanup_in_progress() {
    // KPO's cleanup patches already_checked while the TI is still running, then deletes or keeps
    // the pod itself.
    let p = zdag("t", 1).checked();
    is(
        judge(&p, &[(p.key(), ti(1, Some("running")))]),
        Verdict::Keep,
        Reason::Active,
    );
}

#[test]
fn row12_checked_pod_with_ti_deferred_is_kept() {
    let p = zdag("t", 1).checked();
    is(
        judge(&p, &[(p.key(), ti(1, Some("deferred")))]),
        Verdict::Keep,
        Reason::Active,
    );
}

// ---- row 13: active ----

#[test]
fn row13_label_equals_column_while_running_deferred_retrying_rescheduling_or_cleared() {
    let p = zdag("t", 3);
    for state in [
        Some("running"),
        Some("deferred"),
        Some("up_for_retry"),
        Some("up_for_reschedule"),
        Some("restarting"),
        Some("queued"),
        Some("scheduled"),
        None,
    ] {
        is(
            judge(&p, &[(p.key(), ti(3, state))]),
            Verdict::Keep,
            Reason::Active,
        );
    }
}

#[test]
fn row13_unknown_state_awaiting_input_keeps_the_pod() {
    // Airflow 3.3's awaiting_input (HITL) is not in the terminal deny-list: active.
    let p = zdag("t", 1);
    is(
        judge(&p, &[(p.key(), ti(1, Some("awaiting_input")))]),
        Verdict::Keep,
        Reason::Active,
    );
    // 2.0–2.1's `shutdown` likewise.
    is(
        judge(&p, &[(p.key(), ti(1, Some("shutdown")))]),
        Verdict::Keep,
        Reason::Active,
    );
}

#[test]
fn row13_airflow_2_0_to_2_9_deferred_column_is_label_minus_one_and_pod_is_kept() {
    // 2.2–2.9 `_defer_task`: `self._try_number -= 1`, so while deferred the column is one below
    // the label the pod was created with.
    let p = zdag("t", 2);
    is(
        judge(&p, &[(p.key(), ti(1, Some("deferred")))]),
        Verdict::Keep,
        Reason::Active,
    );
    // Even when already checked (row 8 does not match a deferred TI).
    let p = zdag("t", 2).checked();
    is(
        judge(&p, &[(p.key(), ti(1, Some("deferred")))]),
        Verdict::Keep,
        Reason::Active,
    );
}

#[test]
fn row13_airflow_2_null_try_number_reads_zero_and_keeps_the_pod() {
    let p = zdag("t", 1);
    is(
        judge(&p, &[(p.key(), ti(0, Some("running")))]),
        Verdict::Keep,
        Reason::Active,
    );
}

// ---- row 14: superseded ----

#[test]
fn row14_older_try_with_a_pod_of_the_current_try_is_superseded() {
    let old = zdag("t", 1);
    let cur = zdag("t", 2);
    let active = [(old.key(), ti(2, Some("running")))];
    is(
        judge_among(&old, &[&cur], &active, &cfg()),
        Verdict::Zombie,
        Reason::Superseded,
    );
    is(
        judge_among(&cur, &[&old], &active, &cfg()),
        Verdict::Keep,
        Reason::Active,
    );
}

#[test]
fn row14_sibling_must_be_in_the_same_namespace_in_scope_and_of_the_active_try() {
    let old = zdag("t", 1);
    let active = [(old.key(), ti(3, Some("running")))];
    let c = DecideConfig {
        namespaces: Some(["airflow".to_owned(), "other".to_owned()].into()),
        ..cfg()
    };
    // Another namespace.
    let elsewhere = zdag("t", 3).ns("other");
    is(
        judge_among(&old, &[&elsewhere], &active, &c),
        Verdict::Keep,
        Reason::MayReattach,
    );
    // A try that is not the active one.
    let two = zdag("t", 2);
    is(
        judge_among(&old, &[&two], &active, &c),
        Verdict::Keep,
        Reason::MayReattach,
    );
    // Another deployment's pod with the same key.
    let c_owner = DecideConfig {
        owners: [OWNER.to_owned()].into(),
        ..c.clone()
    };
    let theirs = zdag("t", 3).stamped("system:serviceaccount:other:worker");
    is(
        judge_among(&old, &[&theirs], &active, &c_owner),
        Verdict::Keep,
        Reason::MayReattach,
    );
    // The real thing.
    let three = zdag("t", 3);
    is(
        judge_among(&old, &[&three], &active, &c),
        Verdict::Zombie,
        Reason::Superseded,
    );
}

// ---- row 15: may-reattach ----

#[test]
fn row15_older_try_alone_while_ti_runs_is_kept_since_kpo_reattach_omits_try_number() {
    let old = zdag("t", 1);
    for state in [
        Some("running"),
        Some("queued"),
        Some("scheduled"),
        Some("deferred"),
    ] {
        is(
            judge(&old, &[(old.key(), ti(2, state))]),
            Verdict::Keep,
            Reason::MayReattach,
        );
    }
}

#[test]
fn row15_strict_retry_makes_an_older_try_alone_a_zombie() {
    let c = DecideConfig {
        strict_retry: true,
        ..cfg()
    };
    let old = zdag("t", 1);
    is(
        judge_among(&old, &[], &[(old.key(), ti(2, Some("running")))], &c),
        Verdict::Zombie,
        Reason::MayReattach,
    );
}

// ---- row 6: age from the later of admitted-at and creationTimestamp ----

#[test]
fn row6_forged_old_admitted_at_cannot_age_a_new_pod() {
    // Someone with pods/patch rewrote admitted-at to a day ago; the apiserver says 10 s.
    let p = zdag("t", 1)
        .created(Some(NOW - 10))
        .restamp()
        .annotate(stamp::ADMITTED_AT, &(NOW - 86_400).to_string());
    is(judge(&p, &[]), Verdict::Keep, Reason::TooYoung);
    // A stamp without admitted-at (a MutatingAdmissionPolicy cannot read a clock): creation.
    let mut p = zdag("t", 1).created(Some(NOW - 10));
    p.annotations.remove(stamp::ADMITTED_AT);
    is(judge(&p, &[]), Verdict::Keep, Reason::TooYoung);
    let mut p = zdag("t", 1).created(Some(NOW - HOUR));
    p.annotations.remove(stamp::ADMITTED_AT);
    is(judge(&p, &[]), Verdict::Zombie, Reason::NoActiveTi);
}

// ---- rows 9–11 (v4): only a terminal row at the pod's try or later is evidence ----

#[test]
fn row9_terminal_row_at_or_above_the_pods_try_is_evidence() {
    let p = zdag("t", 2);
    for t in [2, 3] {
        is(
            judge_rows(&p, &[], &[(p.key(), Some(t))], &cfg()),
            Verdict::Zombie,
            Reason::NoActiveTi,
        );
    }
}

#[test]
fn row10_backup_behind_the_cluster_keeps_the_pod_newer_than_db() {
    // The pod runs try 2; a backup restored from before holds the row at try 1, failed.
    let p = zdag("t", 2);
    is(
        judge_rows(&p, &[], &[(p.key(), Some(1))], &cfg()),
        Verdict::Keep,
        Reason::NewerThanDb,
    );
    // A NULL try_number (Airflow 2.x) proves nothing either.
    is(
        judge_rows(&p, &[], &[(p.key(), None)], &cfg()),
        Verdict::Keep,
        Reason::NewerThanDb,
    );
    // --sweep-unknown-ti-after does not touch it: the row exists.
    let c = DecideConfig {
        sweep_unknown_ti_after: Some(0),
        ..cfg()
    };
    is(
        judge_rows(&p, &[], &[(p.key(), Some(1))], &c),
        Verdict::Keep,
        Reason::NewerThanDb,
    );
}

#[test]
fn row11_no_row_at_all_is_kept_unless_the_admin_purges_rows() {
    // A staging copy, a run deleted in the UI, `airflow db clean`: no row for a live pod.
    let p = zdag("t", 1);
    is(
        judge_rows(&p, &[], &[], &cfg()),
        Verdict::Keep,
        Reason::UnknownTi,
    );
    // The pod is an hour old: swept after 30 minutes, kept after two hours.
    let after = |secs| DecideConfig {
        sweep_unknown_ti_after: Some(secs),
        ..cfg()
    };
    is(
        judge_rows(&p, &[], &[], &after(1800)),
        Verdict::Zombie,
        Reason::UnknownTi,
    );
    is(
        judge_rows(&p, &[], &[], &after(7200)),
        Verdict::Keep,
        Reason::UnknownTi,
    );
    // Age counts from the later of admitted-at and creationTimestamp: a forged old stamp does
    // not age a new pod.
    let young = zdag("t", 1).created(Some(NOW - 60)).restamp();
    let c = DecideConfig {
        min_age_secs: 0,
        ..after(1800)
    };
    is(
        judge_rows(&young, &[], &[], &c),
        Verdict::Keep,
        Reason::UnknownTi,
    );
}

#[test]
fn rows9_10_colliding_terminal_rows_are_evidence_only_when_every_row_is() {
    let p = zdag("t", 2);
    let both = |a, b| [(p.key(), a), (p.key(), b)];
    is(
        judge_rows(&p, &[], &both(Some(2), Some(5)), &cfg()),
        Verdict::Zombie,
        Reason::NoActiveTi,
    );
    is(
        judge_rows(&p, &[], &both(Some(5), Some(1)), &cfg()),
        Verdict::Keep,
        Reason::NewerThanDb,
    );
    is(
        judge_rows(&p, &[], &both(Some(5), None), &cfg()),
        Verdict::Keep,
        Reason::NewerThanDb,
    );
}

#[test]
fn rows9_10_a_stale_map_index_reads_the_unmapped_terminal_row() {
    let p = zdag("t", 1).map_index(3);
    let unmapped = TiKey {
        map_index: -1,
        ..p.key()
    };
    is(
        judge_rows(&p, &[], &[(unmapped.clone(), Some(1))], &cfg()),
        Verdict::Zombie,
        Reason::NoActiveTi,
    );
    is(
        judge_rows(&p, &[], &[(unmapped.clone(), Some(0))], &cfg()),
        Verdict::Keep,
        Reason::NewerThanDb,
    );
    // The mapped key's own row wins over the unmapped one.
    is(
        judge_rows(&p, &[], &[(p.key(), Some(0)), (unmapped, Some(1))], &cfg()),
        Verdict::Keep,
        Reason::NewerThanDb,
    );
}

// ---- row 8: unknown-dag ----

#[test]
fn row8_wrong_database_keeps_every_pod_whatever_their_number() {
    // A freshly migrated, a staging or a restored database: none of the pods' DAGs.
    let pods: Vec<PodMeta> = (0..3)
        .map(|i| zdag(&format!("task_{i}"), 1).build())
        .collect();
    let empty = KnownDags::new();
    for i in 0..pods.len() {
        let mut v = pods.clone();
        v.swap(0, i);
        is(
            judge_with(&v, &[], &[], &empty, &cfg()),
            Verdict::Keep,
            Reason::UnknownDag,
        );
    }
    // Another DAG is known, not this one.
    let other: KnownDags = ["some_other_dag".to_owned()].into();
    is(
        judge_with(&pods, &[], &[], &other, &cfg()),
        Verdict::Keep,
        Reason::UnknownDag,
    );
    // The DAG is compared in label form: a long dag_id the database normalizes.
    let long = "a_dag_id_that_is_far_too_long_to_be_a_kubernetes_label_value_as_it_is";
    let p = pod(
        &tikey::make_safe_label_value(long),
        "t",
        "manual__2025-12-02T000000-abcdef012",
        1,
    )
    .build();
    let dags: KnownDags = [tikey::make_safe_label_value(long)].into();
    let key = p.key().unwrap().0.clone();
    is(
        judge_with(
            std::slice::from_ref(&p),
            &[],
            &[(key, Some(1))],
            &dags,
            &cfg(),
        ),
        Verdict::Zombie,
        Reason::NoActiveTi,
    );
}

#[test]
fn row8_unknown_dag_does_not_count_towards_the_breaker_and_later_rows_do() {
    assert!(!Reason::UnknownDag.judged_against_db());
    assert!(!Reason::Owned.judged_against_db());
    assert!(!Reason::TooYoung.judged_against_db());
    for r in [
        Reason::NoActiveTi,
        Reason::NewerThanDb,
        Reason::UnknownTi,
        Reason::Checked,
        Reason::Active,
        Reason::Superseded,
        Reason::MayReattach,
    ] {
        assert!(r.judged_against_db(), "{r:?}");
    }
}

// ---- lookup: keys several TIs normalize to ----

#[test]
fn colliding_key_is_kept_while_any_ti_behind_it_is_active() {
    // Two TIs whose ids normalize to the same labels: one up_for_retry at try 1, one running at
    // try 3. Merged into one record, row 10 would read the pod (try 1, checked) as a zombie.
    let p = zdag("t", 1).checked();
    let active = [
        (p.key(), ti(1, Some("up_for_retry"))),
        (p.key(), ti(3, Some("running"))),
    ];
    is(judge(&p, &active), Verdict::Keep, Reason::Active);
    // Unchecked, older try, with a pod of the other TI's try: still kept.
    let old = zdag("t", 1);
    let three = zdag("t", 3);
    is(
        judge_among(&old, &[&three], &active, &cfg()),
        Verdict::Keep,
        Reason::Active,
    );
    // One active row alone is not ambiguous.
    is(
        judge(&p, &[(p.key(), ti(1, Some("up_for_retry")))]),
        Verdict::Zombie,
        Reason::Checked,
    );
    // Every TI behind the key terminal: none is read, the pod is a zombie.
    is(judge(&p, &[]), Verdict::Zombie, Reason::NoActiveTi);
}

// ---- lookup: a stale map_index label ----

#[test]
fn stale_map_index_is_judged_against_the_unmapped_ti() {
    // A pod template copied from a mapped pod: map_index 0 on an unmapped task's pod.
    let p = zdag("t", 1).map_index(0);
    let unmapped = zdag("t", 1).key();
    is(
        judge(&p, &[(unmapped.clone(), ti(1, Some("running")))]),
        Verdict::Keep,
        Reason::Active,
    );
    // And by the unmapped TI's state and try: checked while up_for_retry is a zombie.
    is(
        judge(
            &p.clone().checked(),
            &[(unmapped.clone(), ti(1, Some("up_for_retry")))],
        ),
        Verdict::Zombie,
        Reason::Checked,
    );
    is(
        judge(&p, &[(unmapped.clone(), ti(2, Some("running")))]),
        Verdict::Keep,
        Reason::MayReattach,
    );
    // The mapped TI itself active: judged against it, not the unmapped one.
    is(
        judge(
            &p,
            &[
                (p.key(), ti(1, Some("running"))),
                (unmapped, ti(5, Some("queued"))),
            ],
        ),
        Verdict::Keep,
        Reason::Active,
    );
    // Neither active: a zombie.
    is(judge(&p, &[]), Verdict::Zombie, Reason::NoActiveTi);
}

#[test]
fn reasons_are_the_reports_strings_in_table_order() {
    let all = [
        (Reason::OutOfScope, "out-of-scope"),
        (Reason::Unstamped, "unstamped"),
        (Reason::Owned, "owned"),
        (Reason::Unidentifiable, "unidentifiable"),
        (Reason::InconsistentStamp, "inconsistent-stamp"),
        (Reason::TooYoung, "too-young"),
        (Reason::Terminating, "terminating"),
        (Reason::UnknownDag, "unknown-dag"),
        (Reason::NoActiveTi, "no-active-ti"),
        (Reason::NewerThanDb, "newer-than-db"),
        (Reason::UnknownTi, "unknown-ti"),
        (Reason::Checked, "checked"),
        (Reason::Active, "active"),
        (Reason::Superseded, "superseded"),
        (Reason::MayReattach, "may-reattach"),
    ];
    for (i, (r, s)) in all.iter().enumerate() {
        assert_eq!(usize::from(r.row()), i + 1);
        assert_eq!(r.as_str(), *s);
        assert_eq!(serde_json::to_value(r).unwrap(), *s);
    }
}

// ---- memory: a run holds one PodMeta per listed pod and one ActiveTi per active TI ----

#[test]
fn per_pod_and_per_ti_records_stay_compact() {
    // 50,000 pods must fit the sweeper's 64 MB budget (issue 11): the stamp is checked against the
    // labels when the pod is read rather than kept as a second key, and the namespace and creator
    // are shared. These bounds fail on the 360-byte record that held the stamp itself.
    let pod = std::mem::size_of::<PodMeta>();
    let ti = std::mem::size_of::<ActiveTi>();
    let entry = std::mem::size_of::<(&TiKey, ActiveTi)>();
    eprintln!("PodMeta {pod} bytes, ActiveTi {ti} bytes, an active map's entry {entry} bytes");
    assert!(pod <= 240, "PodMeta is {pod} bytes");
    assert!(ti <= 40, "ActiveTi is {ti} bytes");
    // 150,000 pods in 96 MB (issue 24): the active map's keys are the pods' own (8 bytes, where an
    // owned key took 80 plus its three strings), and a uid is 16 bytes with no allocation.
    assert!(entry <= 48, "an active map's entry is {entry} bytes");
    assert!(matches!(
        Uid::new("0f8fad5b-d9cb-469f-a165-70867728950e"),
        Uid::Uuid(_)
    ));
    // Airflow's own states borrow a static string: no allocation per active TI row.
    assert!(matches!(
        ActiveTi::new(1, Some("running")).state,
        Some(std::borrow::Cow::Borrowed("running"))
    ));
    assert_eq!(
        ActiveTi::new(1, Some("a_state_nobody_knows"))
            .state
            .as_deref(),
        Some("a_state_nobody_knows")
    );
}
