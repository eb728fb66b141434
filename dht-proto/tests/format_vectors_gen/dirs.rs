//! Vectors of directory manifests (`vectors/dirmanifests.json`).

use super::*;

/// A directory manifest as a peer could send it, with no check.
#[derive(Serialize)]
struct RawDir {
    t: &'static str,
    v: u32,
    entries: Vec<RawDirEntry>,
}

#[derive(Serialize)]
struct RawDirEntry {
    c: Option<Cid>,
    p: Vec<&'static str>,
    s: u64,
    x: bool,
}

fn raw_file(p: Vec<&'static str>) -> RawDirEntry {
    RawDirEntry {
        c: Some(file_cid()),
        p,
        s: 12,
        x: false,
    }
}

pub(super) fn dir_vectors() -> Vec<Value> {
    let mut out = Vec::new();
    let file = |path: &str, executable: bool| DirEntry {
        path: RelPath::parse(path).expect("path"),
        kind: EntryKind::File {
            cid: file_cid(),
            size: 12,
            executable,
        },
    };
    let empty = |path: &str| DirEntry {
        path: RelPath::parse(path).expect("path"),
        kind: EntryKind::EmptyDir,
    };
    let trees = [
        (
            "docs/hello.txt and empty tmp",
            vec![file("docs/hello.txt", false), empty("tmp")],
        ),
        (
            "executable, nested, sorted by component",
            vec![file("a-b", false), file("a/b", true), file("B", false)],
        ),
        (
            "names Windows reserves are accepted",
            vec![file("aux.c", false), file("what?.txt", false)],
        ),
        (
            "a case collision is valid but reported",
            vec![file("Photos/a.jpg", false), file("photos/b.jpg", false)],
        ),
        ("empty tree", vec![]),
    ];
    for (name, entries) in trees {
        let m = DirManifest::new(entries).expect("valid tree");
        let collisions: Vec<[String; 2]> = m
            .case_collisions()
            .iter()
            .map(|(a, b)| [a.to_string(), b.to_string()])
            .collect();
        out.push(json!({
            "name": name, "valid": true, "bytes": hex(&m.encode()), "cid": m.cid().to_string(),
            "value": dir_json(&m), "case_collisions": collisions,
        }));
    }
    let hostile: Vec<(&str, Vec<RawDirEntry>)> = vec![
        (
            "parent component",
            vec![raw_file(vec!["..", "etc", "passwd"])],
        ),
        (
            "absolute path as a component",
            vec![raw_file(vec!["/etc/passwd"])],
        ),
        ("empty first component", vec![raw_file(vec!["", "etc"])]),
        ("backslash", vec![raw_file(vec!["..\\..\\x"])]),
        ("dot", vec![raw_file(vec!["."])]),
        ("no component", vec![raw_file(vec![])]),
        ("NUL", vec![raw_file(vec!["a\0b"])]),
        ("33 levels", vec![raw_file(vec!["d"; 33])]),
        ("duplicate", vec![raw_file(vec!["a"]), raw_file(vec!["a"])]),
        (
            "file used as a directory",
            vec![raw_file(vec!["a"]), raw_file(vec!["a", "b"])],
        ),
        ("unsorted", vec![raw_file(vec!["b"]), raw_file(vec!["a"])]),
        (
            "empty directory with a size",
            vec![RawDirEntry {
                c: None,
                p: vec!["a"],
                s: 1,
                x: false,
            }],
        ),
    ];
    for (name, entries) in hostile {
        let bytes = codec::encode(&RawDir {
            t: "dir",
            v: 1,
            entries,
        });
        out.push(json!({ "name": name, "valid": false, "bytes": hex(&bytes) }));
    }
    out
}
