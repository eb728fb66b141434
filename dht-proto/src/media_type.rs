//! A file's media type guessed from its name's extension, for catalog entries, and the
//! rule a media type from a peer must follow. A guess, not a sniff: the bytes are not
//! read, and an unknown extension gives `application/octet-stream`.

/// The media type of a name with no known extension.
pub const DEFAULT_MEDIA_TYPE: &str = "application/octet-stream";
/// The media type of a directory (the freedesktop.org convention).
pub const DIRECTORY_MEDIA_TYPE: &str = "inode/directory";
/// The longest media type accepted from a peer.
pub const MAX_MEDIA_TYPE_LEN: usize = 127;

/// Extensions (lower case, without the dot) and their media types, sorted by extension
/// so that [`media_type_for_name`] can binary-search them.
const BY_EXTENSION: &[(&str, &str)] = &[
    ("7z", "application/x-7z-compressed"),
    ("aac", "audio/aac"),
    ("avi", "video/x-msvideo"),
    ("avif", "image/avif"),
    ("bmp", "image/bmp"),
    ("bz2", "application/x-bzip2"),
    ("c", "text/x-c"),
    ("cbz", "application/vnd.comicbook+zip"),
    ("css", "text/css"),
    ("csv", "text/csv"),
    ("deb", "application/vnd.debian.binary-package"),
    ("doc", "application/msword"),
    (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    ("epub", "application/epub+zip"),
    ("flac", "audio/flac"),
    ("gif", "image/gif"),
    ("gz", "application/gzip"),
    ("h", "text/x-c"),
    ("heic", "image/heic"),
    ("htm", "text/html"),
    ("html", "text/html"),
    ("ico", "image/vnd.microsoft.icon"),
    ("iso", "application/x-iso9660-image"),
    ("jpeg", "image/jpeg"),
    ("jpg", "image/jpeg"),
    ("js", "text/javascript"),
    ("json", "application/json"),
    ("m4a", "audio/mp4"),
    ("md", "text/markdown"),
    ("mkv", "video/x-matroska"),
    ("mobi", "application/x-mobipocket-ebook"),
    ("mov", "video/quicktime"),
    ("mp3", "audio/mpeg"),
    ("mp4", "video/mp4"),
    ("odt", "application/vnd.oasis.opendocument.text"),
    ("oga", "audio/ogg"),
    ("ogg", "audio/ogg"),
    ("ogv", "video/ogg"),
    ("opus", "audio/opus"),
    ("pdf", "application/pdf"),
    ("png", "image/png"),
    ("ppt", "application/vnd.ms-powerpoint"),
    (
        "pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ),
    ("py", "text/x-python"),
    ("rar", "application/vnd.rar"),
    ("rs", "text/x-rust"),
    ("rtf", "application/rtf"),
    ("sh", "application/x-sh"),
    ("srt", "application/x-subrip"),
    ("svg", "image/svg+xml"),
    ("tar", "application/x-tar"),
    ("tif", "image/tiff"),
    ("tiff", "image/tiff"),
    ("toml", "application/toml"),
    ("ttf", "font/ttf"),
    ("txt", "text/plain"),
    ("wav", "audio/wav"),
    ("webm", "video/webm"),
    ("webp", "image/webp"),
    ("woff2", "font/woff2"),
    ("xls", "application/vnd.ms-excel"),
    (
        "xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ),
    ("xml", "application/xml"),
    ("xz", "application/x-xz"),
    ("yaml", "application/yaml"),
    ("zip", "application/zip"),
    ("zst", "application/zstd"),
];

/// The media type for a file name, from the text after its last dot (any letter case);
/// [`DEFAULT_MEDIA_TYPE`] when there is none or it is unknown. A name that starts with
/// its only dot (`.bashrc`) has no extension.
pub fn media_type_for_name(name: &str) -> &'static str {
    let Some((stem, extension)) = name.rsplit_once('.') else {
        return DEFAULT_MEDIA_TYPE;
    };
    if stem.is_empty() || extension.len() > 8 {
        return DEFAULT_MEDIA_TYPE;
    }
    let extension = extension.to_ascii_lowercase();
    BY_EXTENSION
        .binary_search_by(|(known, _)| known.cmp(&extension.as_str()))
        .map(|i| BY_EXTENSION[i].1)
        .unwrap_or(DEFAULT_MEDIA_TYPE)
}

/// Whether `media_type` is a well-formed `type/subtype` (RFC 6838 restricted names:
/// ASCII letters, digits and `!#$&-^_.+`, the first character a letter or digit, each
/// part at most 63 characters), lower case, with no parameters, at most
/// [`MAX_MEDIA_TYPE_LEN`] bytes.
pub fn is_valid_media_type(media_type: &str) -> bool {
    fn is_name(part: &str) -> bool {
        let mut chars = part.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
            && part.len() <= 63
            && chars
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "!#$&-^_.+".contains(c))
    }
    media_type.len() <= MAX_MEDIA_TYPE_LEN
        && media_type
            .split_once('/')
            .is_some_and(|(kind, sub)| is_name(kind) && is_name(sub))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_sorted_lower_case_and_valid() {
        for pair in BY_EXTENSION.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{:?} before {:?}", pair[0], pair[1]);
        }
        for (extension, media_type) in BY_EXTENSION {
            assert_eq!(*extension, extension.to_ascii_lowercase());
            assert!(is_valid_media_type(media_type), "{media_type}");
        }
        assert!(is_valid_media_type(DEFAULT_MEDIA_TYPE));
        assert!(is_valid_media_type(DIRECTORY_MEDIA_TYPE));
    }

    #[test]
    fn guesses_from_the_extension() {
        assert_eq!(media_type_for_name("Holiday.JPG"), "image/jpeg");
        assert_eq!(media_type_for_name("archive.tar.gz"), "application/gzip");
        assert_eq!(media_type_for_name("film.mkv"), "video/x-matroska");
        assert_eq!(media_type_for_name("README"), DEFAULT_MEDIA_TYPE);
        assert_eq!(media_type_for_name(".bashrc"), DEFAULT_MEDIA_TYPE);
        assert_eq!(media_type_for_name("x.unknownext"), DEFAULT_MEDIA_TYPE);
        assert_eq!(media_type_for_name("name."), DEFAULT_MEDIA_TYPE);
        assert_eq!(media_type_for_name("ÄÖ.TXT"), "text/plain");
    }

    #[test]
    fn validates_media_types() {
        for bad in [
            "",
            "text",
            "text/",
            "/plain",
            "Text/plain",
            "text/plain; charset=utf-8",
            "text/pl ain",
            "text/plain/x",
            "-x/y",
            "тип/подтип",
        ] {
            assert!(!is_valid_media_type(bad), "{bad:?}");
        }
        assert!(!is_valid_media_type(&format!("a/{}", "b".repeat(64))));
        assert!(is_valid_media_type("application/vnd.ms-excel"));
    }
}
