//! The circuit breaker: when a run finds more zombies than it should, something is more likely
//! wrong with the run (a DB of another deployment, a schema it misreads, a restored backup) than
//! with the cluster. It then deletes nothing and exits 2.

/// `--max-deletions` default.
pub const DEFAULT_MAX_DELETIONS: u64 = 100;
/// `--max-fraction` default.
pub const DEFAULT_MAX_FRACTION: f64 = 0.5;
/// The fraction is not checked below this many zombies: one zombie among one pod is 100 %, and a
/// quiet cluster must not trip the breaker on every run. `--max-deletions` still applies, and a
/// wrong database is caught by row 8 (`unknown-dag`) whatever the count.
pub const FRACTION_MIN_ZOMBIES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Breaker {
    pub max_deletions: u64,
    pub max_fraction: f64,
}

impl Default for Breaker {
    fn default() -> Self {
        Breaker {
            max_deletions: DEFAULT_MAX_DELETIONS,
            max_fraction: DEFAULT_MAX_FRACTION,
        }
    }
}

/// Why the breaker tripped, with the override that would let this run through.
#[derive(Debug, Clone, PartialEq)]
pub struct Trip(pub String);

impl Breaker {
    /// `zombies` among the `judged` pods: those judged against the database (docs/design.md §5 row 9
    /// or later). Owned, unidentifiable, too young, terminating and unknown-DAG pods can never be
    /// zombies, so they do not dilute the fraction.
    pub fn check(&self, zombies: usize, judged: usize) -> Result<(), Trip> {
        if zombies as u64 > self.max_deletions {
            return Err(Trip(format!(
                "circuit breaker tripped: {zombies} zombies exceed --max-deletions {}; nothing was deleted. \
                 Review them in a dry run (without --delete); if they are all zombies, rerun with \
                 --max-deletions {zombies}",
                self.max_deletions
            )));
        }
        let fraction = if judged == 0 {
            0.0
        } else {
            zombies as f64 / judged as f64
        };
        if zombies >= FRACTION_MIN_ZOMBIES && fraction > self.max_fraction {
            return Err(Trip(format!(
                "circuit breaker tripped: {zombies} zombies are {:.0}% of {judged} pods judged against the database, above \
                 --max-fraction {}; nothing was deleted. Check that --db-url is this deployment's Airflow DB \
                 and review the pods in a dry run; if they are all zombies, rerun with --max-fraction {:.2}",
                fraction * 100.0,
                self.max_fraction,
                (fraction * 100.0).ceil() / 100.0
            )));
        }
        Ok(())
    }

    /// Each cluster's own breaker (`--context`): `clusters` clusters, `of[i]` the cluster of pod
    /// `i` and `decisions[i]` its decision. A cluster's zombies count against its own pods only, so
    /// a wrong or stale cluster trips alone and the others are swept.
    pub fn check_each(
        &self,
        clusters: usize,
        of: &[usize],
        decisions: &[crate::decide::Decision],
    ) -> Vec<Result<(), Trip>> {
        let mut counts = vec![(0usize, 0usize); clusters];
        for (d, &c) in decisions.iter().zip(of) {
            counts[c].0 += usize::from(d.is_zombie());
            counts[c].1 += usize::from(d.reason.judged_against_db());
        }
        counts
            .into_iter()
            .map(|(zombies, judged)| self.check(zombies, judged))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cluster_has_its_own_breaker() {
        use crate::decide::{Decision, Reason, Verdict};
        let b = Breaker {
            max_deletions: 2,
            max_fraction: 1.0,
        };
        let d = |verdict, reason| Decision {
            verdict,
            reason,
            stuck_terminating: false,
        };
        let z = d(Verdict::Zombie, Reason::NoActiveTi);
        let k = d(Verdict::Keep, Reason::Active);
        // Cluster 0: 3 zombies (over the cap); cluster 1: 2 zombies; cluster 2: none listed.
        let of = [0, 0, 0, 1, 1, 1];
        let d = [z, z, z, z, z, k];
        let r = b.check_each(3, &of, &d);
        assert!(r[0].as_ref().unwrap_err().0.contains("3 zombies"));
        assert!(r[1].is_ok() && r[2].is_ok());
        // Together they would have tripped: 5 > 2.
        assert!(b.check(5, 6).is_err());
    }

    #[test]
    fn absolute_cap() {
        let b = Breaker {
            max_deletions: 3,
            max_fraction: 1.0,
        };
        assert!(b.check(3, 3).is_ok());
        let t = b.check(4, 100).unwrap_err();
        assert!(t.0.contains("--max-deletions 4"), "{}", t.0);
    }

    #[test]
    fn fraction_of_pods_judged_against_the_database() {
        let b = Breaker {
            max_deletions: 1000,
            max_fraction: 0.5,
        };
        assert!(b.check(5, 10).is_ok());
        let t = b.check(6, 10).unwrap_err();
        assert!(
            t.0.contains("60%") && t.0.contains("--max-fraction 0.60"),
            "{}",
            t.0
        );
        // Below the floor, the fraction is not checked.
        assert!(b.check(4, 4).is_ok());
        assert!(b.check(0, 0).is_ok());
        // 1.0 never trips on the fraction.
        let b = Breaker {
            max_deletions: 1000,
            max_fraction: 1.0,
        };
        assert!(b.check(50, 50).is_ok());
    }
}
