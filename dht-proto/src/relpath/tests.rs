use super::*;

fn path(text: &str) -> RelPath {
    RelPath::parse(text).unwrap()
}

#[test]
fn hostile_names_are_refused() {
    let cases: Vec<(&str, NameError)> = vec![
        ("", NameError::Empty),
        (".", NameError::Dots(".".into())),
        ("..", NameError::Dots("..".into())),
        ("a/b", NameError::Separator("a/b".into())),
        (
            "..\\..\\windows",
            NameError::Separator("..\\..\\windows".into()),
        ),
        ("a\0b", NameError::Control("a\0b".into())),
        ("a\nb", NameError::Control("a\nb".into())),
        ("\u{1b}[2J", NameError::Control("\u{1b}[2J".into())),
        ("a\u{85}b", NameError::Control("a\u{85}b".into())),
    ];
    for (name, error) in cases {
        assert_eq!(validate_component(name), Err(error), "{name:?}");
    }
    assert_eq!(
        validate_component(&"x".repeat(256)),
        Err(NameError::TooLong(256))
    );
    for ok in [
        "a",
        "...",
        ".hidden",
        "a..b",
        "aux.c",
        "CON",
        "what?.txt",
        "日本語",
        "C:",
    ] {
        assert_eq!(validate_component(ok), Ok(()), "{ok:?}");
    }
    assert_eq!(validate_component(&"é".repeat(127)), Ok(()));
}

#[test]
fn hostile_paths_are_refused() {
    for (text, error) in [
        ("", NameError::EmptyPath),
        ("/etc/passwd", NameError::Empty),
        ("a//b", NameError::Empty),
        ("a/", NameError::Empty),
        ("a/../../b", NameError::Dots("..".into())),
        ("./a", NameError::Dots(".".into())),
    ] {
        assert_eq!(RelPath::parse(text), Err(error), "{text:?}");
    }
    assert_eq!(RelPath::new(vec![]), Err(NameError::EmptyPath));
    let deep = vec!["d".to_string(); MAX_DEPTH + 1];
    assert_eq!(RelPath::new(deep), Err(NameError::TooDeep(MAX_DEPTH + 1)));
    let long = vec!["x".repeat(255); 9];
    assert_eq!(RelPath::new(long), Err(NameError::PathTooLong(9 * 255 + 8)));
    assert!(RelPath::new(vec!["x".repeat(255); 8]).is_ok());
}

#[test]
fn a_valid_path_always_lands_inside_the_root() {
    let root = Path::new("/srv/downloads/tree");
    for text in ["a", "a/b/c.txt", "...", "a..b/..c", ".git/config", "CON/x"] {
        let path = path(text);
        let joined = match path.join_under(root) {
            Ok(joined) => joined,
            Err(e) if cfg!(windows) => {
                assert!(matches!(e, NameError::NotPortable { .. }));
                continue;
            }
            Err(e) => panic!("{text} refused: {e}"),
        };
        assert!(joined.starts_with(root), "{joined:?}");
        assert_eq!(
            joined.components().count(),
            root.components().count() + path.components().len()
        );
        assert!(joined
            .strip_prefix(root)
            .unwrap()
            .components()
            .all(|c| matches!(c, Component::Normal(_))));
        assert_eq!(path.to_string(), text);
    }
}

#[test]
fn windows_problems_are_named() {
    for name in [
        "CON",
        "con",
        "aux.c",
        "NUL.tar.gz",
        "com1",
        "LPT9.txt",
        "con .txt",
    ] {
        assert_eq!(
            windows_problem(name),
            Some("a reserved device name"),
            "{name}"
        );
    }
    assert!(windows_problem("a.").is_some());
    assert!(windows_problem("a ").is_some());
    assert!(windows_problem("what?").is_some());
    assert!(windows_problem("C:").is_some());
    for fine in ["console", "auxiliary.c", "com10", "a.b", "日本語"] {
        assert_eq!(windows_problem(fine), None, "{fine}");
    }
    if cfg!(windows) {
        assert!(path("aux.c").local_path().is_err());
        assert!(path("C:").local_path().is_err());
    } else {
        assert!(path("aux.c").local_path().is_ok());
        assert!(path("C:").local_path().is_ok());
    }
}

#[test]
fn case_collisions_are_found_per_directory() {
    let paths: Vec<RelPath> = [
        "README.md",
        "readme.md",
        "Docs/a.txt",
        "docs/b.txt",
        "src/Main.rs",
        "lib/main.rs",
        "Cafe\u{301}/x",
        "café/y",
        "Straße",
        "STRASSE",
    ]
    .iter()
    .map(|t| path(t))
    .collect();
    let pairs = case_collisions(&paths);
    let shown: Vec<(String, String)> = pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(
        shown,
        vec![
            ("README.md".to_string(), "readme.md".to_string()),
            ("Docs".to_string(), "docs".to_string()),
            ("Cafe\u{301}".to_string(), "café".to_string()),
        ]
    );
    // Same name in different directories is no collision; neither is the same path twice.
    assert!(case_collisions(&[path("a/x"), path("b/X"), path("a/x")]).is_empty());
}
