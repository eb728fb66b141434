//! The catalog in memory: this node's signed entries for its listed files, indexed so a
//! request is answered without touching the disk, and the keyword keys they need.
//!
//! - Every word of every listed name ([`name_words`]) points at the entries holding it,
//!   so a search intersects a few small sets instead of scanning every name.
//! - Entries are also kept newest first, so a page of a browse is a slice.
//! - The keyword keys to provide are the first 16 keywords of each name ([`keywords`]),
//!   reference-counted: a word is provided while at least one listed name has it, and
//!   each change says which words to start and stop announcing, so announcements never
//!   outnumber the distinct words.
//!
//! The index holds one entry per listed file of the store, which bounds it.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap, HashSet};

use dht_proto::catalog::{page_range, CatalogEntry, MAX_SEARCH_RESULTS, PAGE_SIZE};
use dht_proto::keyword::{keywords, name_matches, name_words};
use dht_proto::Cid;

/// Keyword keys whose announcing starts or stops after a change of the index.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct KeywordChanges {
    /// Words no listed name had before.
    pub start: Vec<String>,
    /// Words no listed name has any more.
    pub stop: Vec<String>,
}

impl KeywordChanges {
    /// Adds the changes of a later step.
    pub fn merge(&mut self, other: KeywordChanges) {
        // A word stopped then started again within one change (a rename that keeps it)
        // needs neither.
        for word in other.start {
            match self.stop.iter().position(|w| *w == word) {
                Some(i) => {
                    self.stop.swap_remove(i);
                }
                None => self.start.push(word),
            }
        }
        for word in other.stop {
            match self.start.iter().position(|w| *w == word) {
                Some(i) => {
                    self.start.swap_remove(i);
                }
                None => self.stop.push(word),
            }
        }
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.start.is_empty() && self.stop.is_empty()
    }
}

struct Listed {
    entry: CatalogEntry,
    words: Vec<String>,
    keywords: Vec<String>,
}

/// The listed entries and their indexes.
#[derive(Default)]
pub struct Index {
    entries: HashMap<Cid, Listed>,
    newest_first: BTreeSet<(Reverse<u64>, Cid)>,
    postings: HashMap<String, HashSet<Cid>>,
    provided: HashMap<String, u32>,
}

impl Index {
    /// Lists `entry`, replacing the entry listed for the same CID (its name may have
    /// changed).
    pub fn insert(&mut self, entry: CatalogEntry) -> KeywordChanges {
        let cid = *entry.cid();
        let mut changes = self.remove(&cid);
        let words = name_words(entry.name());
        let keywords = keywords(entry.name());
        for word in &words {
            self.postings.entry(word.clone()).or_default().insert(cid);
        }
        let mut started = KeywordChanges::default();
        for word in &keywords {
            let count = self.provided.entry(word.clone()).or_insert(0);
            *count += 1;
            if *count == 1 {
                started.start.push(word.clone());
            }
        }
        changes.merge(started);
        self.newest_first.insert((Reverse(entry.added()), cid));
        self.entries.insert(
            cid,
            Listed {
                entry,
                words,
                keywords,
            },
        );
        changes
    }

    /// Stops listing `cid` (nothing happens if it was not listed).
    pub fn remove(&mut self, cid: &Cid) -> KeywordChanges {
        let mut changes = KeywordChanges::default();
        let Some(listed) = self.entries.remove(cid) else {
            return changes;
        };
        self.newest_first
            .remove(&(Reverse(listed.entry.added()), *cid));
        for word in &listed.words {
            if let Some(set) = self.postings.get_mut(word) {
                set.remove(cid);
                if set.is_empty() {
                    self.postings.remove(word);
                }
            }
        }
        for word in listed.keywords {
            if let Some(count) = self.provided.get_mut(&word) {
                *count -= 1;
                if *count == 0 {
                    self.provided.remove(&word);
                    changes.stop.push(word);
                }
            }
        }
        changes
    }

    /// The listed entry of `cid`.
    pub fn get(&self, cid: &Cid) -> Option<&CatalogEntry> {
        self.entries.get(cid).map(|l| &l.entry)
    }

    /// Number of listed entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The CIDs listed now.
    pub fn cids(&self) -> Vec<Cid> {
        self.entries.keys().copied().collect()
    }

    /// The keyword keys to provide now (one per distinct word).
    pub fn provided_keywords(&self) -> Vec<String> {
        self.provided.keys().cloned().collect()
    }

    /// Listed entries whose names hold every word of `words` (keywords as
    /// `dht_proto::keyword::keywords` makes them), newest first, at most
    /// [`MAX_SEARCH_RESULTS`]; and whether there were more.
    pub fn search(&self, words: &[String]) -> (Vec<CatalogEntry>, bool) {
        let mut sets = Vec::with_capacity(words.len());
        for word in words {
            match self.postings.get(word) {
                Some(set) => sets.push(set),
                None => return (Vec::new(), false),
            }
        }
        let Some(smallest) = sets.iter().min_by_key(|s| s.len()) else {
            return (Vec::new(), false);
        };
        let mut matching: Vec<&CatalogEntry> = smallest
            .iter()
            .filter(|cid| sets.iter().all(|s| s.contains(cid)))
            .filter_map(|cid| self.get(cid))
            .filter(|e| name_matches(e.name(), words))
            .collect();
        matching.sort_by_key(|e| (Reverse(e.added()), *e.cid()));
        let more = matching.len() > MAX_SEARCH_RESULTS;
        matching.truncate(MAX_SEARCH_RESULTS);
        (matching.into_iter().cloned().collect(), more)
    }

    /// Page `page` of the listed entries, newest first ([`PAGE_SIZE`] a page; empty
    /// past the last), and the number listed.
    pub fn page(&self, page: u32) -> (Vec<CatalogEntry>, usize) {
        let total = self.entries.len();
        let range = page_range(page, total);
        let entries = self
            .newest_first
            .iter()
            .skip(range.start)
            .take(range.len().min(PAGE_SIZE))
            .filter_map(|(_, cid)| self.get(cid).cloned())
            .collect();
        (entries, total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dht_proto::catalog::EntryInfo;
    use dht_proto::identity::SigningKey;

    fn entry(name: &str, added: u64) -> CatalogEntry {
        entry_for(name, name, added)
    }

    fn entry_for(bytes: &str, name: &str, added: u64) -> CatalogEntry {
        EntryInfo {
            cid: Cid::for_manifest_bytes(bytes.as_bytes()),
            name: name.into(),
            size: 10,
            media_type: dht_proto::media_type::media_type_for_name(name).into(),
            added,
        }
        .sign(&SigningKey::from_bytes(&[1; 32]))
        .unwrap()
    }

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| w.to_string()).collect()
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    fn names(entries: &[CatalogEntry]) -> Vec<&str> {
        entries.iter().map(|e| e.name()).collect()
    }

    #[test]
    fn keywords_are_reference_counted() {
        let mut index = Index::default();
        let a = entry("Holiday Photos.zip", 1);
        let b = entry("holiday video.mkv", 2);
        assert_eq!(
            sorted(index.insert(a.clone()).start),
            words(&["holiday", "photos", "zip"])
        );
        // Only the words nobody had before start.
        let changes = index.insert(b.clone());
        assert_eq!(sorted(changes.start), words(&["mkv", "video"]));
        assert!(changes.stop.is_empty());
        assert_eq!(index.provided_keywords().len(), 5);
        // Only the words nobody has any more stop.
        assert_eq!(
            sorted(index.remove(a.cid()).stop),
            words(&["photos", "zip"])
        );
        assert!(index.remove(a.cid()).is_empty(), "removing twice");
        assert_eq!(
            sorted(index.remove(b.cid()).stop),
            words(&["holiday", "mkv", "video"])
        );
        assert!(index.provided_keywords().is_empty());
        assert!(index.postings.is_empty() && index.newest_first.is_empty());
    }

    #[test]
    fn a_renamed_entry_changes_only_the_words_that_differ() {
        let mut index = Index::default();
        index.insert(entry_for("bytes", "holiday photos.zip", 1));
        let changes = index.insert(entry_for("bytes", "holiday pictures.zip", 1));
        assert_eq!(changes.start, words(&["pictures"]));
        assert_eq!(changes.stop, words(&["photos"]));
        assert_eq!(index.len(), 1);
        assert!(index.search(&words(&["photos"])).0.is_empty());
        assert_eq!(index.search(&words(&["pictures"])).0.len(), 1);
    }

    #[test]
    fn only_the_first_16_words_are_provided_but_every_word_is_found() {
        let long: Vec<String> = (0..20).map(|i| format!("word{i:02}")).collect();
        let mut index = Index::default();
        let changes = index.insert(entry(&long.join(" "), 1));
        assert_eq!(changes.start.len(), 16);
        assert!(!changes.start.contains(&"word19".to_string()));
        let (found, more) = index.search(&words(&["word19", "word00"]));
        assert_eq!(found.len(), 1);
        assert!(!more);
    }

    #[test]
    fn search_needs_every_word_and_is_bounded() {
        let mut index = Index::default();
        index.insert(entry("Holiday Photos 2024.zip", 1));
        index.insert(entry("holiday video.mkv", 2));
        index.insert(entry("Straße nach Österreich.pdf", 3));
        assert_eq!(index.search(&words(&["holiday"])).0.len(), 2);
        assert_eq!(
            names(&index.search(&words(&["holiday", "photos"])).0),
            ["Holiday Photos 2024.zip"]
        );
        assert!(index.search(&words(&["holiday", "italy"])).0.is_empty());
        assert!(index.search(&words(&["holi"])).0.is_empty());
        assert!(index.search(&[]).0.is_empty());
        assert_eq!(index.search(&words(&["österreich", "straße"])).0.len(), 1);

        for i in 0..(MAX_SEARCH_RESULTS as u64 + 5) {
            index.insert(entry(&format!("many {i}.txt"), 10 + i));
        }
        let (found, more) = index.search(&words(&["many"]));
        assert_eq!(found.len(), MAX_SEARCH_RESULTS);
        assert!(more);
        // Newest first.
        assert_eq!(
            found[0].name(),
            format!("many {}.txt", MAX_SEARCH_RESULTS + 4)
        );
    }

    #[test]
    fn pages_are_newest_first_and_empty_past_the_last() {
        let mut index = Index::default();
        for i in 0..(PAGE_SIZE as u64 + 3) {
            index.insert(entry(&format!("file {i}.txt"), i));
        }
        let (first, total) = index.page(0);
        assert_eq!(total, PAGE_SIZE + 3);
        assert_eq!(first.len(), PAGE_SIZE);
        assert_eq!(first[0].name(), format!("file {}.txt", PAGE_SIZE + 2));
        let (second, _) = index.page(1);
        assert_eq!(names(&second), ["file 2.txt", "file 1.txt", "file 0.txt"]);
        assert!(index.page(2).0.is_empty());
        assert!(index.page(u32::MAX).0.is_empty());
        // Every entry is on exactly one page.
        let mut seen: Vec<Cid> = first.iter().chain(&second).map(|e| *e.cid()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), total);
    }
}
