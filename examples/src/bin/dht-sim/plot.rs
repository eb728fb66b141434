//! The run's plots, each as PNG and SVG (plotters, text drawn with ab_glyph from a TTF
//! file read at run time, so no system font library is needed): the distribution of
//! lookup latency, the success rate per simulated minute, and the hop histogram.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::report::quantile;

const SIZE: (u32, u32) = (640, 400);
/// The font family name the plots ask for (registered from the TTF file).
const FAMILY: &str = "sans-serif";

/// TTF files tried in turn when `--font` is not given.
const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/liberation/LiberationSans-Regular.ttf",
];

/// Registers the font the plots draw text with: `font`, or the first candidate found.
pub fn load_font(font: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match font {
        Some(p) => p.to_path_buf(),
        None => FONT_CANDIDATES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .context("no TTF font found for the plots (give one with --font, or --no-plots)")?,
    };
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    // plotters keeps registered fonts for the life of the program.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font(FAMILY, FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("{} is not a usable TTF font", path.display()))?;
    Ok(path)
}

/// What the plots show.
pub struct PlotData<'a> {
    pub title: &'a str,
    /// Latencies of successful lookups under churn, ms.
    pub latencies_ms: Vec<f64>,
    /// (minute, success rate, lookups) for each simulated minute.
    pub minutes: &'a [(u32, Option<f64>, u64)],
    pub hop_histogram: &'a [u64],
}

/// Draws every plot as `<stem>-<plot>.png` and `.svg` in `dir`; returns the files.
pub fn draw_all(dir: &Path, stem: &str, data: &PlotData<'_>) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for (name, plot) in [
        ("latency", Plot::Latency),
        ("minutes", Plot::Minutes),
        ("hops", Plot::Hops),
    ] {
        let png_path = dir.join(format!("{stem}-{name}.png"));
        {
            let area = BitMapBackend::new(&png_path, SIZE).into_drawing_area();
            draw(&area, plot, data)?;
            area.present().context("writing PNG")?;
        }
        let svg_path = dir.join(format!("{stem}-{name}.svg"));
        {
            let area = SVGBackend::new(&svg_path, SIZE).into_drawing_area();
            draw(&area, plot, data)?;
            area.present().context("writing SVG")?;
        }
        files.push(png_path);
        files.push(svg_path);
    }
    Ok(files)
}

#[derive(Clone, Copy)]
enum Plot {
    Latency,
    Minutes,
    Hops,
}

fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    plot: Plot,
    data: &PlotData<'_>,
) -> anyhow::Result<()> {
    match plot {
        Plot::Latency => latency_cdf(area, data),
        Plot::Minutes => success_per_minute(area, data),
        Plot::Hops => hops(area, data),
    }
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing: {e}")
}

/// Share of successful lookups at or below each latency (log scale).
fn latency_cdf<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &PlotData<'_>,
) -> anyhow::Result<()> {
    area.fill(&WHITE).map_err(err)?;
    let mut v = data.latencies_ms.clone();
    v.sort_by(|a, b| a.total_cmp(b));
    let max = v.last().copied().unwrap_or(1.0).max(10.0) * 1.2;
    let min = v.first().copied().unwrap_or(1.0).clamp(0.1, 1.0);
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{}: lookup latency", data.title), (FAMILY, 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((min..max).log_scale(), 0.0..100.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("ms to the provider (log)")
        .y_desc("% of successful lookups")
        .label_style((FAMILY, 12))
        .draw()
        .map_err(err)?;
    let n = v.len().max(1) as f64;
    chart
        .draw_series(LineSeries::new(
            v.iter()
                .enumerate()
                .map(|(i, &ms)| (ms.max(min), 100.0 * (i + 1) as f64 / n)),
            BLUE.stroke_width(2),
        ))
        .map_err(err)?;
    for (q, color) in [(0.5, GREEN), (0.99, RED)] {
        if let Some(x) = quantile(&v, q) {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x.max(min), 0.0), (x.max(min), 100.0)],
                    color.stroke_width(1),
                )))
                .map_err(err)?
                .label(format!("p{}: {:.0} ms", (q * 100.0) as u32, x))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], color));
        }
    }
    chart
        .configure_series_labels()
        .label_font((FAMILY, 12))
        .position(SeriesLabelPosition::LowerRight)
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()
        .map_err(err)?;
    Ok(())
}

/// Success rate of the lookups started in each simulated minute.
fn success_per_minute<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &PlotData<'_>,
) -> anyhow::Result<()> {
    area.fill(&WHITE).map_err(err)?;
    let last = data.minutes.last().map(|m| m.0).unwrap_or(1).max(1);
    let lowest = data
        .minutes
        .iter()
        .filter_map(|m| m.1)
        .fold(1.0f64, f64::min);
    let floor = ((lowest * 100.0 - 1.0).floor()).clamp(0.0, 99.0);
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{}: lookups that found the provider", data.title),
            (FAMILY, 18),
        )
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0u32..last, floor..100.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("simulated minute (0: before churn)")
        .y_desc("% succeeded")
        .label_style((FAMILY, 12))
        .draw()
        .map_err(err)?;
    let points: Vec<(u32, f64)> = data
        .minutes
        .iter()
        .filter_map(|(m, rate, _)| rate.map(|r| (*m, 100.0 * r)))
        .collect();
    chart
        .draw_series(LineSeries::new(points.clone(), BLUE.stroke_width(2)))
        .map_err(err)?;
    chart
        .draw_series(points.into_iter().map(|p| Circle::new(p, 3, BLUE.filled())))
        .map_err(err)?;
    Ok(())
}

/// How many hops successful lookups took.
fn hops<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    data: &PlotData<'_>,
) -> anyhow::Result<()> {
    area.fill(&WHITE).map_err(err)?;
    let total: u64 = data.hop_histogram.iter().sum();
    let top = data
        .hop_histogram
        .iter()
        .map(|&c| 100.0 * c as f64 / total.max(1) as f64)
        .fold(1.0f64, f64::max);
    let bins = data.hop_histogram.len().max(1) as u32;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{}: hops to the provider record", data.title),
            (FAMILY, 18),
        )
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d((0u32..bins).into_segmented(), 0.0..top * 1.1)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("hops (0: the looking node held the record)")
        .y_desc("% of successful lookups")
        .label_style((FAMILY, 12))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(
            Histogram::vertical(&chart)
                .style(BLUE.filled())
                .margin(4)
                .data(
                    data.hop_histogram
                        .iter()
                        .enumerate()
                        .map(|(h, &c)| (h as u32, 100.0 * c as f64 / total.max(1) as f64)),
                ),
        )
        .map_err(err)?;
    Ok(())
}
