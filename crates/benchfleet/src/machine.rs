//! Machine identity: the facts that decide whether two measurements are comparable, and their
//! digest, the machine class. Every record carries the class (tag [`TAG_CLASS`]); a run stores
//! the raw facts as `machine.*` tags. Like conbench's hardware hash and asv's `machine.json`:
//! comparisons across classes are flagged, and a fleet run measures its benchmarks on one class.

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Record and run tag: the machine class (`mc-` and 12 hex digits of the facts' SHA-256).
pub const TAG_CLASS: &str = benchfleet_model::RunRecord::TAG_MACHINE_CLASS;
/// Environment variable that overrides the class (tests; machines known to be identical).
pub const CLASS_ENV: &str = "BENCHFLEET_MACHINE_CLASS";

/// What identifies a machine for measurement purposes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineFacts {
    pub cpu_model: String,
    /// Physical cores and hardware threads this process may use.
    pub cores: usize,
    pub threads: usize,
    pub memory_bytes: u64,
    pub kernel: String,
    /// CPU frequency governor of CPU 0, where readable.
    pub governor: Option<String>,
    /// Simultaneous multithreading (`on`, `off`, `notsupported`, …), where readable.
    pub smt: Option<String>,
}

impl MachineFacts {
    /// This machine's facts, read once.
    pub fn current() -> &'static MachineFacts {
        static FACTS: OnceLock<MachineFacts> = OnceLock::new();
        FACTS.get_or_init(|| {
            let read = |p: &str| {
                std::fs::read_to_string(p)
                    .ok()
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
            };
            let cpu_model = read("/proc/cpuinfo")
                .and_then(|c| {
                    c.lines()
                        .find(|l| l.starts_with("model name"))
                        .and_then(|l| l.split_once(':'))
                        .map(|(_, v)| v.trim().to_owned())
                })
                .unwrap_or_else(|| std::env::consts::ARCH.to_owned());
            let threads = crate::host::available_cores();
            let host = crate::host::host_info();
            MachineFacts {
                cpu_model,
                cores: crate::cpus::physical_cores().unwrap_or(threads),
                threads,
                memory_bytes: host.memory_bytes,
                kernel: read("/proc/sys/kernel/osrelease").unwrap_or_default(),
                governor: read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
                smt: read("/sys/devices/system/cpu/smt/control"),
            }
        })
    }

    /// The class: a digest of the facts, so machines with equal facts share it.
    pub fn class(&self) -> String {
        let mut h = benchfleet_model::Digest::hasher();
        h.field(&self.cpu_model)
            .field(self.cores.to_string())
            .field(self.threads.to_string())
            .field(self.memory_bytes.to_string())
            .field(&self.kernel)
            .field(self.governor.as_deref().unwrap_or(""))
            .field(self.smt.as_deref().unwrap_or(""));
        format!("mc-{}", h.finish().short(12))
    }

    /// The facts as run tags (`machine.cpu_model`, …) with the class.
    pub fn tags(&self) -> BTreeMap<String, String> {
        let mut t = BTreeMap::new();
        t.insert(TAG_CLASS.to_owned(), class().to_owned());
        t.insert("machine.cpu_model".into(), self.cpu_model.clone());
        t.insert("machine.cores".into(), self.cores.to_string());
        t.insert("machine.threads".into(), self.threads.to_string());
        t.insert("machine.memory_bytes".into(), self.memory_bytes.to_string());
        t.insert("machine.kernel".into(), self.kernel.clone());
        if let Some(g) = &self.governor {
            t.insert("machine.governor".into(), g.clone());
        }
        if let Some(s) = &self.smt {
            t.insert("machine.smt".into(), s.clone());
        }
        t
    }
}

/// This machine's class: [`CLASS_ENV`] when set, else the digest of its facts.
pub fn class() -> &'static str {
    static CLASS: OnceLock<String> = OnceLock::new();
    CLASS.get_or_init(|| match std::env::var(CLASS_ENV) {
        Ok(c) if !c.trim().is_empty() => c.trim().to_owned(),
        _ => MachineFacts::current().class(),
    })
}

/// The machine classes of `tags` maps (records or runs) that carry one, sorted and deduplicated.
pub fn classes<'a>(tags: impl IntoIterator<Item = &'a BTreeMap<String, String>>) -> Vec<String> {
    let mut v: Vec<String> = tags
        .into_iter()
        .filter_map(|t| t.get(TAG_CLASS).cloned())
        .collect();
    v.sort();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_facts_share_a_class_and_any_difference_changes_it() {
        let a = MachineFacts {
            cpu_model: "Xeon".into(),
            cores: 2,
            threads: 4,
            memory_bytes: 1 << 30,
            kernel: "6.1".into(),
            governor: Some("performance".into()),
            smt: Some("on".into()),
        };
        assert_eq!(a.class(), a.clone().class());
        assert!(a.class().starts_with("mc-") && a.class().len() == 15);
        let variants = [
            MachineFacts {
                cpu_model: "EPYC".into(),
                ..a.clone()
            },
            MachineFacts {
                threads: 2,
                ..a.clone()
            },
            MachineFacts {
                kernel: "6.2".into(),
                ..a.clone()
            },
            MachineFacts {
                governor: Some("powersave".into()),
                ..a.clone()
            },
            MachineFacts {
                smt: None,
                ..a.clone()
            },
        ];
        for v in variants {
            assert_ne!(v.class(), a.class(), "{v:?}");
        }
    }

    #[test]
    fn this_machine_has_facts() {
        let f = MachineFacts::current();
        assert!(
            f.threads >= 1 && f.cores >= 1 && f.memory_bytes > 0,
            "{f:?}"
        );
        assert_eq!(f.tags().get(TAG_CLASS).map(String::as_str), Some(class()));
    }
}
