use super::*;
use crate::ticket::tests::example;

/// Decodes a drawing with rqrr, given which cells (column, row) of a `side`-square grid
/// are dark, drawn at 4 pixels per cell with an extra white border.
fn read_back(side: usize, dark: impl Fn(usize, usize) -> bool) -> String {
    let scale = 4;
    let border = 8;
    let size = (side + 2 * border) * scale;
    let mut image = rqrr::PreparedImage::prepare_from_greyscale(size, size, |x, y| {
        let (cx, cy) = (x / scale, y / scale);
        let inside = (border..border + side).contains(&cx) && (border..border + side).contains(&cy);
        if inside && dark(cx - border, cy - border) {
            0
        } else {
            255
        }
    });
    let grids = image.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the picture");
    grids[0].decode().unwrap().1
}

#[test]
fn the_terminal_drawing_scans_back_to_the_ticket() {
    let text = example().qr_text().unwrap();
    for dark_background in [true, false] {
        let drawing = qr_terminal(&text, dark_background).unwrap();
        let lines: Vec<Vec<char>> = drawing.lines().map(|l| l.chars().collect()).collect();
        let side = lines[0].len();
        assert!(lines.iter().all(|l| l.len() == side));
        assert_eq!(
            side,
            57 + 2 * TERMINAL_QUIET_ZONE,
            "version 10 for 293 characters"
        );
        assert!(side <= 80, "fits an 80-column terminal");
        assert_eq!(lines.len(), side.div_ceil(2));
        let read = read_back(side, |x, y| {
            let c = lines[y / 2][x];
            let inked = match c {
                '█' => true,
                '▀' => y % 2 == 0,
                '▄' => y % 2 == 1,
                _ => false,
            };
            inked != dark_background
        });
        assert_eq!(read, text);
        assert_eq!(read.parse::<crate::ticket::Ticket>().unwrap(), example());
    }
}

#[test]
fn the_svg_drawing_scans_back_to_the_ticket() {
    let text = example().qr_text().unwrap();
    let svg = qr_svg(&text).unwrap();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 65 65\""));
    assert!(svg.ends_with("</svg>"));
    // Parse the path back: runs "M{x} {y}h{n}v1h-{n}z".
    let d = svg
        .split(" d=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let side = 57 + 2 * SVG_QUIET_ZONE;
    let mut dark = vec![false; side * side];
    for run in d.split('z').filter(|r| !r.is_empty()) {
        let run = run.strip_prefix('M').unwrap();
        let (x, rest) = run.split_once(' ').unwrap();
        let (y, rest) = rest.split_once('h').unwrap();
        let (n, _) = rest.split_once('v').unwrap();
        let (x, y, n): (usize, usize, usize) =
            (x.parse().unwrap(), y.parse().unwrap(), n.parse().unwrap());
        for i in x..x + n {
            dark[y * side + i] = true;
        }
    }
    let read = read_back(side, |x, y| dark[y * side + x]);
    assert_eq!(read, text);
}

#[test]
fn the_largest_ticket_still_has_a_code_and_absurd_text_has_none() {
    let largest = crate::ticket::Ticket {
        name: "n".repeat(255),
        provider: vec![1; 70],
        addrs: vec![vec![4; 255]; 8],
        ..example()
    };
    let text = largest.qr_text().unwrap();
    let matrix = QrMatrix::new(&text).unwrap();
    assert!(matrix.width() <= 177);
    assert_eq!(
        QrMatrix::new(&"A".repeat(5000)),
        Err(QrError::TooLong(5000))
    );
}
