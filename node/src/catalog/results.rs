//! Search results: verified entries merged by CID, one result per file however many
//! peers list it, and ranked.
//!
//! Peers may list the same file under different names; a result shows the name (and
//! size, and media type) that most of its publishers give. On a tie it shows the name
//! the search words make up most of, then the smallest; so the result does not depend
//! on which peer answered first.
//! Ranking: the number of distinct publishers first (what many peers share is more
//! likely what was looked for, and easier to download), then how much of the name the
//! search words make up (`holiday` ranks `holiday.jpg` above `holiday photos from the
//! old house.zip`), then the name and the CID so the order is stable. At most
//! [`MAX_RESULTS`] files are kept; entries of files past that are dropped, while files
//! already in keep gaining publishers.

use std::collections::HashMap;

use dht_proto::catalog::CatalogEntry;
use dht_proto::keyword::name_words;
use dht_proto::Cid;
use libp2p::PeerId;

/// Most files a search returns.
pub const MAX_RESULTS: usize = 200;

/// One file found, as it is shown.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// The file.
    pub cid: Cid,
    /// Its name, as most of its publishers give it.
    pub name: String,
    /// Its size, as most of its publishers give it.
    pub size: u64,
    /// Its media type, as most of its publishers give it.
    pub media_type: String,
    /// When it was first added by any of its publishers (Unix seconds).
    pub added: u64,
    /// The distinct peers that list it and signed their entry, in the order found.
    pub publishers: Vec<PeerId>,
    /// How much of the name the search words make up (0 to 1; 1 for a browse).
    pub name_match: f64,
}

/// Counts of one value among a file's publishers.
#[derive(Debug, Default)]
struct Votes<T>(Vec<(T, u32)>);

impl<T: PartialEq + Ord> Votes<T> {
    fn add(&mut self, value: T) {
        match self.0.iter_mut().find(|(v, _)| *v == value) {
            Some((_, n)) => *n += 1,
            None => self.0.push((value, 1)),
        }
    }

    /// The value most publishers give; on a tie, the one `better` prefers, then the
    /// smallest.
    fn winner_by<K: PartialOrd>(&self, better: impl Fn(&T) -> K) -> Option<&T> {
        let most = self.0.iter().map(|(_, n)| *n).max()?;
        let mut best: Option<&T> = None;
        for (value, _) in self.0.iter().filter(|(_, n)| *n == most) {
            best = match best {
                None => Some(value),
                Some(b) => match better(value).partial_cmp(&better(b)) {
                    Some(std::cmp::Ordering::Greater) => Some(value),
                    Some(std::cmp::Ordering::Equal) | None if value < b => Some(value),
                    _ => Some(b),
                },
            };
        }
        best
    }

    /// The value most publishers give; the smallest on a tie.
    fn winner(&self) -> Option<&T> {
        self.winner_by(|_| ())
    }
}

#[derive(Debug, Default)]
struct Merged {
    names: Votes<String>,
    sizes: Votes<u64>,
    media_types: Votes<String>,
    added: u64,
    publishers: Vec<PeerId>,
}

/// The results of one search (or one browse) so far.
#[derive(Debug)]
pub struct Results {
    words: Vec<String>,
    files: HashMap<Cid, Merged>,
    /// Entries of files past [`MAX_RESULTS`], dropped.
    pub dropped: usize,
}

impl Results {
    /// Results of a search for `words` (empty for a browse).
    pub fn new(words: Vec<String>) -> Self {
        Results {
            words,
            files: HashMap::new(),
            dropped: 0,
        }
    }

    /// Adds an entry `publisher` sent and signed. Returns the file's result if it is new
    /// or gained a publisher; `None` if nothing changed or the file is past the cap.
    pub fn add(&mut self, publisher: PeerId, entry: &CatalogEntry) -> Option<SearchHit> {
        let cid = *entry.cid();
        if !self.files.contains_key(&cid) && self.files.len() >= MAX_RESULTS {
            self.dropped += 1;
            return None;
        }
        let merged = self.files.entry(cid).or_insert_with(|| Merged {
            added: entry.added(),
            ..Merged::default()
        });
        if merged.publishers.contains(&publisher) {
            return None;
        }
        merged.publishers.push(publisher);
        merged.names.add(entry.name().to_string());
        merged.sizes.add(entry.size());
        merged.media_types.add(entry.media_type().to_string());
        merged.added = merged.added.min(entry.added());
        self.hit(&cid)
    }

    /// The current result for `cid`.
    pub fn hit(&self, cid: &Cid) -> Option<SearchHit> {
        let merged = self.files.get(cid)?;
        let name = (merged.names)
            .winner_by(|n| name_match(n, &self.words))?
            .clone();
        Some(SearchHit {
            cid: *cid,
            name_match: name_match(&name, &self.words),
            name,
            size: *merged.sizes.winner()?,
            media_type: merged.media_types.winner()?.clone(),
            added: merged.added,
            publishers: merged.publishers.clone(),
        })
    }

    /// Files found.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Every result, best first.
    pub fn ranked(&self) -> Vec<SearchHit> {
        let mut hits: Vec<SearchHit> = self.files.keys().filter_map(|c| self.hit(c)).collect();
        rank(&mut hits);
        hits
    }
}

/// Sorts results best first (see the module documentation).
pub fn rank(hits: &mut [SearchHit]) {
    hits.sort_by(|a, b| {
        b.publishers
            .len()
            .cmp(&a.publishers.len())
            .then(b.name_match.total_cmp(&a.name_match))
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.cid.cmp(&b.cid))
    });
}

/// The share of the name's words that are search words (1 when there are none).
fn name_match(name: &str, words: &[String]) -> f64 {
    if words.is_empty() {
        return 1.0;
    }
    let all = name_words(name);
    let matched = all.iter().filter(|w| words.contains(w)).count();
    if all.is_empty() {
        0.0
    } else {
        matched as f64 / all.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dht_proto::catalog::EntryInfo;
    use dht_proto::identity::SigningKey;

    fn entry(bytes: &str, name: &str, size: u64, added: u64) -> CatalogEntry {
        EntryInfo {
            cid: Cid::for_manifest_bytes(bytes.as_bytes()),
            name: name.into(),
            size,
            media_type: dht_proto::media_type::media_type_for_name(name).into(),
            added,
        }
        .sign(&SigningKey::from_bytes(&[1; 32]))
        .unwrap()
    }

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn entries_merge_by_cid_with_the_majority_name() {
        let mut results = Results::new(words(&["holiday"]));
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let first = results.add(a, &entry("x", "holiday.jpg", 5, 30)).unwrap();
        assert_eq!(first.publishers, vec![a]);
        // The same peer again changes nothing.
        assert!(results.add(a, &entry("x", "holiday.jpg", 5, 30)).is_none());
        let second = results
            .add(b, &entry("x", "Holiday at the sea.jpg", 6, 20))
            .unwrap();
        assert_eq!(second.publishers, vec![a, b]);
        // A tie: the name the words make more of (1 of 2 words against 1 of 4).
        assert_eq!((second.name.as_str(), second.size), ("holiday.jpg", 5));
        assert_eq!(second.added, 20, "the earliest time added");
        let third = results
            .add(c, &entry("x", "Holiday at the sea.jpg", 6, 40))
            .unwrap();
        assert_eq!(
            (third.name.as_str(), third.size),
            ("Holiday at the sea.jpg", 6)
        );
        assert_eq!(results.len(), 1);
        // The same entries in another order give the same result.
        let mut reversed = Results::new(words(&["holiday"]));
        reversed.add(c, &entry("x", "Holiday at the sea.jpg", 6, 40));
        reversed.add(b, &entry("x", "Holiday at the sea.jpg", 6, 20));
        let last = reversed.add(a, &entry("x", "holiday.jpg", 5, 30)).unwrap();
        assert_eq!(
            (last.name, last.size, last.added),
            (third.name, third.size, 20)
        );
        let mut tied = Results::new(words(&["holiday"]));
        tied.add(b, &entry("y", "Holiday at the sea.jpg", 6, 1));
        let hit = tied.add(a, &entry("y", "holiday.jpg", 5, 1)).unwrap();
        assert_eq!((hit.name.as_str(), hit.size), ("holiday.jpg", 5));
    }

    #[test]
    fn more_publishers_rank_first_then_the_closer_name() {
        let mut results = Results::new(words(&["holiday"]));
        let (a, b) = (PeerId::random(), PeerId::random());
        results.add(
            a,
            &entry("long", "holiday photos from the old house.zip", 1, 1),
        );
        results.add(a, &entry("short", "holiday.jpg", 1, 1));
        results.add(a, &entry("popular", "our holiday photos.zip", 1, 1));
        results.add(b, &entry("popular", "our holiday photos.zip", 1, 1));
        let ranked: Vec<String> = results.ranked().into_iter().map(|h| h.name).collect();
        assert_eq!(
            ranked,
            [
                "our holiday photos.zip",
                "holiday.jpg",
                "holiday photos from the old house.zip"
            ]
        );
    }

    #[test]
    fn results_are_capped_and_kept_files_still_gain_publishers() {
        let mut results = Results::new(words(&["many"]));
        let (a, b) = (PeerId::random(), PeerId::random());
        for i in 0..MAX_RESULTS + 10 {
            results.add(a, &entry(&i.to_string(), &format!("many {i}"), 1, 1));
        }
        assert_eq!(results.len(), MAX_RESULTS);
        assert_eq!(results.dropped, 10);
        let kept = results.add(b, &entry("0", "many 0", 1, 1)).unwrap();
        assert_eq!(kept.publishers.len(), 2);
        assert!(results.add(b, &entry("new", "many new", 1, 1)).is_none());
        assert_eq!(results.ranked()[0].name, "many 0");
    }
}
