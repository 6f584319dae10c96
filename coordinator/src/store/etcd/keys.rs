//! The key layout under the configured prefix (see the module doc of `etcd.rs` for the table).
//! Names that come from users (sweep names, job keys, worker ids) are escaped so that a `/` in a
//! name can never make one sweep's range contain another's.

/// Layout version written to `meta/layout`; `connect` refuses a prefix holding another one.
pub(crate) const LAYOUT: &str = "1";
/// Cells per `cells/<sweep>/<chunk>` key.
pub(crate) const CELLS_PER_KEY: usize = 1_000;

#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    /// `prefix` must end in `/` (see `EtcdConfig::normalized_prefix`).
    pub(crate) fn new(prefix: String) -> Self {
        Self { prefix }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, parts: &[&str]) -> Vec<u8> {
        let mut k = self.prefix.clone();
        k.push_str(&parts.join("/"));
        k.into_bytes()
    }

    pub(crate) fn layout(&self) -> Vec<u8> {
        self.key(&["meta", "layout"])
    }

    /// Counter of the last event sequence number (decimal).
    pub(crate) fn event_seq(&self) -> Vec<u8> {
        self.key(&["meta", "event_seq"])
    }

    pub(crate) fn sweeps(&self) -> Vec<u8> {
        self.key(&["sweeps", ""])
    }

    pub(crate) fn sweep(&self, name: &str) -> Vec<u8> {
        self.key(&["sweeps", &escape(name)])
    }

    /// All membership keys (`members/<sweep>/<job>`).
    pub(crate) fn members(&self) -> Vec<u8> {
        self.key(&["members", ""])
    }

    pub(crate) fn members_of(&self, sweep: &str) -> Vec<u8> {
        self.key(&["members", &escape(sweep), ""])
    }

    pub(crate) fn member(&self, sweep: &str, job: &str) -> Vec<u8> {
        self.key(&["members", &escape(sweep), &escape(job)])
    }

    /// `(sweep, job)` of a membership key.
    pub(crate) fn parse_member(&self, key: &[u8]) -> Option<(String, String)> {
        let rest = std::str::from_utf8(key.strip_prefix(self.members().as_slice())?).ok()?;
        let (sweep, job) = rest.split_once('/')?;
        Some((unescape(sweep)?, unescape(job)?))
    }

    pub(crate) fn jobs(&self) -> Vec<u8> {
        self.key(&["jobs", ""])
    }

    pub(crate) fn job(&self, key: &str) -> Vec<u8> {
        self.key(&["jobs", &escape(key)])
    }

    pub(crate) fn cells_of(&self, sweep: &str) -> Vec<u8> {
        self.key(&["cells", &escape(sweep), ""])
    }

    pub(crate) fn cell_chunk(&self, sweep: &str, chunk: usize) -> Vec<u8> {
        self.key(&["cells", &escape(sweep), &format!("{chunk:06}")])
    }

    pub(crate) fn workers(&self) -> Vec<u8> {
        self.key(&["workers", ""])
    }

    pub(crate) fn worker(&self, id: &str) -> Vec<u8> {
        self.key(&["workers", &escape(id)])
    }

    /// All curves of one job (`curves/<job>/<attempt>`).
    pub(crate) fn curves_of(&self, job: &str) -> Vec<u8> {
        self.key(&["curves", &escape(job), ""])
    }

    /// Zero-padded so that key order is attempt order.
    pub(crate) fn curve(&self, job: &str, attempt: u32) -> Vec<u8> {
        self.key(&["curves", &escape(job), &format!("{attempt:010}")])
    }

    pub(crate) fn events(&self) -> Vec<u8> {
        self.key(&["events", ""])
    }

    /// Zero-padded so that key order is sequence order.
    pub(crate) fn event(&self, seq: u64) -> Vec<u8> {
        self.key(&["events", &format!("{seq:020}")])
    }
}

/// The smallest key greater than every key starting with `prefix` (etcd's range end).
pub(crate) fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Every byte was 0xff: range to the end of the keyspace.
    vec![0]
}

/// `%` → `%25`, `/` → `%2F`; everything else as is.
pub(crate) fn escape(name: &str) -> String {
    if !name.contains(['%', '/']) {
        return name.to_owned();
    }
    name.replace('%', "%25").replace('/', "%2F")
}

pub(crate) fn unescape(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3)?;
        out.push(match code {
            "25" => '%',
            "2F" => '/',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips_and_keeps_ranges_apart() {
        for name in ["plain", "a/b", "100%", "%2F/", ""] {
            assert_eq!(unescape(&escape(name)).as_deref(), Some(name));
        }
        let keys = Keys::new("/p/".into());
        let outer = keys.cells_of("a");
        assert!(!keys.cell_chunk("a/b", 0).starts_with(&outer));
        assert_eq!(
            keys.parse_member(&keys.member("x/y", "job:1")),
            Some(("x/y".into(), "job:1".into()))
        );
    }

    #[test]
    fn sequence_keys_sort_numerically() {
        let keys = Keys::new("/p/".into());
        assert!(keys.event(9) < keys.event(10));
        assert!(keys.cell_chunk("s", 99) < keys.cell_chunk("s", 100));
        assert_eq!(prefix_end(b"/p/"), b"/p0".to_vec());
    }
}
