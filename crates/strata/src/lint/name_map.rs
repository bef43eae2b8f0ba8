//! [`NameMap`]: the small by-name maps of the replayed schema (a table's
//! columns, its unique keys).
//!
//! A replayed history keeps every table it leaves, so what each table
//! costs is paid once per table of the history. A `HashMap` of two
//! columns reserves four buckets plus control bytes (about 470 bytes for
//! two columns); one vector of pairs holds exactly its entries. Lookups
//! scan the entries, which for a table's columns is bounded by
//! PostgreSQL's limit of 1,600 columns per table, and in practice by a
//! few dozen: faster than hashing the name.

/// Entries by name, in the order they were first inserted (so anything
/// listed from it comes out in declaration order, the same on every run).
#[derive(Debug, Clone)]
pub struct NameMap<V>(Vec<(String, V)>);

impl<V> Default for NameMap<V> {
    fn default() -> Self {
        NameMap(Vec::new())
    }
}

impl<V> NameMap<V> {
    fn position(&self, name: &str) -> Option<usize> {
        self.0.iter().position(|(n, _)| n == name)
    }

    /// The value under `name`.
    pub fn get(&self, name: &str) -> Option<&V> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The value under `name`, to change it.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut V> {
        self.0.iter_mut().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// Whether `name` has a value.
    pub fn contains_key(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    /// Sets the value under `name`, returning the one it replaces (which
    /// keeps its place in the order).
    pub fn insert(&mut self, name: String, value: V) -> Option<V> {
        match self.position(&name) {
            Some(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            None => {
                self.0.push((name, value));
                None
            }
        }
    }

    /// Takes the value under `name` out (the others keep their order).
    pub fn remove(&mut self, name: &str) -> Option<V> {
        let i = self.position(name)?;
        Some(self.0.remove(i).1)
    }

    /// The value under `name`, inserting the default first if there is none.
    pub fn entry_or_default(&mut self, name: &str) -> &mut V
    where
        V: Default,
    {
        let i = match self.position(name) {
            Some(i) => i,
            None => {
                self.0.push((name.to_owned(), V::default()));
                self.0.len() - 1
            }
        };
        &mut self.0[i].1
    }

    /// Names and values, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &V)> {
        self.0.iter().map(|(n, v)| (n, v))
    }

    /// The names, in insertion order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(n, _)| n)
    }

    /// The values, in insertion order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.0.iter().map(|(_, v)| v)
    }

    /// The values, to change them.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut V> {
        self.0.iter_mut().map(|(_, v)| v)
    }

    /// Keeps the entries `keep` says yes to.
    pub fn retain(&mut self, mut keep: impl FnMut(&String, &mut V) -> bool) {
        self.0.retain_mut(|(n, v)| keep(n, v));
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Gives back the room reserved beyond the entries.
    pub fn shrink_to_fit(&mut self) {
        self.0.shrink_to_fit();
    }
}

impl<V> FromIterator<(String, V)> for NameMap<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        let mut map = NameMap::default();
        for (name, value) in iter {
            map.insert(name, value);
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_a_map_in_insertion_order() {
        let mut m = NameMap::default();
        assert!(m.insert("b".into(), 1).is_none());
        assert!(m.insert("a".into(), 2).is_none());
        // Replacing keeps the place.
        assert_eq!(m.insert("b".into(), 3), Some(1));
        assert_eq!(m.keys().collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(m.get("b"), Some(&3));
        assert!(m.contains_key("a") && !m.contains_key("c"));
        *m.entry_or_default("c") += 5;
        *m.entry_or_default("a") += 5;
        assert_eq!(m.values().copied().collect::<Vec<_>>(), [3, 7, 5]);
        assert_eq!(m.remove("a"), Some(7));
        assert_eq!(m.remove("a"), None);
        m.retain(|n, _| n != "b");
        assert_eq!(m.iter().collect::<Vec<_>>(), [(&"c".to_string(), &5)]);
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn holds_exactly_its_entries() {
        // What the replayed schema saves per table: the HashMap reserves
        // buckets it does not fill.
        let mut m: NameMap<u64> = ["id", "name"].iter().map(|n| (n.to_string(), 0)).collect();
        m.shrink_to_fit();
        assert_eq!(m.0.capacity(), 2);
    }
}
