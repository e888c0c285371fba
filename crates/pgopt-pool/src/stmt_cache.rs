//! The prepared-statement cache of one pooled connection: the `capacity` statements used
//! most recently, by SQL text. It lives and dies with its connection (a statement belongs to
//! one session), so it is never shared and holds no lock of its own.

use std::collections::HashMap;

/// Least-recently-used map from SQL text to a prepared statement (any `V` for the tests).
pub(crate) struct StmtCache<V> {
    capacity: usize,
    tick: u64,
    entries: HashMap<String, (V, u64)>,
}

impl<V: Clone> StmtCache<V> {
    /// A cache of at most `capacity` statements (0: keeps none).
    pub(crate) fn new(capacity: usize) -> Self {
        StmtCache {
            capacity,
            tick: 0,
            entries: HashMap::new(),
        }
    }

    /// The statement for `sql`, marked used now.
    pub(crate) fn get(&mut self, sql: &str) -> Option<V> {
        self.tick += 1;
        let tick = self.tick;
        self.entries.get_mut(sql).map(|(v, used)| {
            *used = tick;
            v.clone()
        })
    }

    /// Keeps `value` for `sql`, dropping the least recently used one when full. Returns
    /// whether one was dropped.
    pub(crate) fn insert(&mut self, sql: &str, value: V) -> bool {
        if self.capacity == 0 {
            return false;
        }
        self.tick += 1;
        let mut evicted = false;
        if !self.entries.contains_key(sql) && self.entries.len() >= self.capacity {
            // Linear in the capacity (tens of entries), and only on a miss, which costs a
            // round trip to the server anyway.
            if let Some(oldest) = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(k, _)| k.clone())
            {
                self.entries.remove(&oldest);
                evicted = true;
            }
        }
        self.entries.insert(sql.to_string(), (value, self.tick));
        evicted
    }

    /// Statements held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hit_returns_the_statement_kept_for_the_same_sql() {
        let mut c = StmtCache::new(2);
        assert_eq!(c.get("SELECT 1"), None);
        c.insert("SELECT 1", 1);
        assert_eq!(c.get("SELECT 1"), Some(1));
        assert_eq!(c.get("SELECT 2"), None);
    }

    #[test]
    fn the_least_recently_used_statement_is_dropped_when_full() {
        let mut c = StmtCache::new(2);
        c.insert("a", 1);
        c.insert("b", 2);
        // "a" used after "b": "b" is the least recently used.
        assert_eq!(c.get("a"), Some(1));
        assert!(c.insert("c", 3));
        assert_eq!(c.len(), 2);
        assert_eq!(c.get("b"), None);
        assert_eq!(c.get("a"), Some(1));
        assert_eq!(c.get("c"), Some(3));
    }

    #[test]
    fn replacing_a_kept_statement_drops_nothing() {
        let mut c = StmtCache::new(1);
        c.insert("a", 1);
        assert!(!c.insert("a", 2));
        assert_eq!(c.get("a"), Some(2));
    }

    #[test]
    fn a_cache_of_capacity_zero_keeps_nothing() {
        let mut c = StmtCache::new(0);
        assert!(!c.insert("a", 1));
        assert_eq!(c.get("a"), None);
    }
}
