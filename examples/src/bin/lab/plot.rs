//! The lab's figures, each as PNG and SVG (plotters; text drawn with ab_glyph from a
//! TTF file read at run time, so no system font library is needed): reputation of each
//! peer type over time as honest peers see it, completion times per type, bytes up and
//! down per peer, and Jain's fairness index per scenario.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::report::{Measured, Role};

const SIZE: (u32, u32) = (720, 420);
const FAMILY: &str = "sans-serif";
const FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

/// Registers the TTF font the figures use: `font`, or the first of [`FONTS`] found.
pub fn register_font(font: Option<&Path>) -> anyhow::Result<()> {
    let path = match font {
        Some(p) => p.to_path_buf(),
        None => FONTS
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .context("no TTF font found: give one with --font")?,
    };
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    // Registered fonts live as long as the program.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font(FAMILY, FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("{} is not a usable TTF font", path.display()))
}

fn colour(role: Role) -> RGBColor {
    match role {
        Role::Seeder => RGBColor(31, 119, 180),
        Role::Honest => RGBColor(44, 160, 44),
        Role::Freeloader => RGBColor(255, 127, 14),
        Role::Corrupter => RGBColor(214, 39, 40),
    }
}

type Area<'a, B> = DrawingArea<B, Shift>;
type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// One figure, drawn on any backend.
enum Figure<'a> {
    Reputation(&'a Measured),
    Completion(&'a Measured),
    Bytes(&'a Measured),
    Fairness(&'a [(String, Option<f64>)]),
}

impl Figure<'_> {
    fn draw<B>(&self, area: &Area<'_, B>) -> DrawResult
    where
        B: DrawingBackend,
        B::ErrorType: 'static,
    {
        match self {
            Figure::Reputation(m) => draw_reputation(area, m),
            Figure::Completion(m) => draw_completion(area, m),
            Figure::Bytes(m) => draw_bytes(area, m),
            Figure::Fairness(runs) => draw_fairness(area, runs),
        }
    }
}

/// Draws one figure as `<stem>.png` and `<stem>.svg` in `dir`.
fn both(dir: &Path, stem: &str, figure: Figure<'_>) -> anyhow::Result<Vec<PathBuf>> {
    let png = dir.join(format!("{stem}.png"));
    let svg = dir.join(format!("{stem}.svg"));
    {
        let area = BitMapBackend::new(&png, SIZE).into_drawing_area();
        area.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
        figure
            .draw(&area)
            .map_err(|e| anyhow::anyhow!("{stem}: {e}"))?;
        area.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    {
        let area = SVGBackend::new(&svg, SIZE).into_drawing_area();
        area.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
        figure
            .draw(&area)
            .map_err(|e| anyhow::anyhow!("{stem}: {e}"))?;
        area.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(vec![png, svg])
}

/// Mean score of each peer type over time, as honest observers see it: one point per
/// sampling round (samples are grouped by the second they were taken in).
fn reputation_series(m: &Measured) -> BTreeMap<Role, Vec<(f64, f64)>> {
    let mut sums: BTreeMap<(Role, u64), (f64, u32)> = BTreeMap::new();
    for s in &m.reputation {
        if m.nodes[s.observer].role != Role::Honest {
            continue;
        }
        let entry = sums.entry((m.nodes[s.peer].role, s.t as u64)).or_default();
        entry.0 += s.score;
        entry.1 += 1;
    }
    let mut series: BTreeMap<Role, Vec<(f64, f64)>> = BTreeMap::new();
    for ((role, t), (sum, n)) in sums {
        series
            .entry(role)
            .or_default()
            .push((t as f64, sum / f64::from(n)));
    }
    series
}

fn draw_reputation<B>(area: &Area<'_, B>, m: &Measured) -> DrawResult
where
    B: DrawingBackend,
    B::ErrorType: 'static,
{
    let series = reputation_series(m);
    let t_max = m.secs.max(1.0);
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{}: reputation seen by honest peers", m.scenario),
            (FAMILY, 18),
        )
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d(0.0..t_max, -100.0..100.0)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("mean score")
        .label_style((FAMILY, 12))
        .draw()?;
    for (role, points) in series {
        let c = colour(role);
        chart
            .draw_series(LineSeries::new(points, c.stroke_width(2)))?
            .label(role.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .label_font((FAMILY, 12))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

fn draw_completion<B>(area: &Area<'_, B>, m: &Measured) -> DrawResult
where
    B: DrawingBackend,
    B::ErrorType: 'static,
{
    let roles = [Role::Honest, Role::Freeloader];
    let t_max = roles
        .iter()
        .flat_map(|r| m.completion(*r))
        .fold(1.0_f64, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{}: completion time per peer type", m.scenario),
            (FAMILY, 18),
        )
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d(-0.5..1.5, 0.0..t_max)?;
    chart
        .configure_mesh()
        .x_labels(2)
        .x_label_formatter(&|x: &f64| {
            let i = x.round() as usize;
            roles.get(i).map_or(String::new(), |r| r.name().to_string())
        })
        .y_desc("seconds")
        .label_style((FAMILY, 12))
        .draw()?;
    for (i, role) in roles.iter().enumerate() {
        let times = m.completion(*role);
        let n = times.len().max(1) as f64;
        chart.draw_series(times.iter().enumerate().map(|(k, t)| {
            // Spread the points sideways so equal times stay visible.
            let x = i as f64 - 0.25 + 0.5 * (k as f64 + 0.5) / n;
            Circle::new((x, *t), 4, colour(*role).filled())
        }))?;
        if !times.is_empty() {
            let mean = times.iter().sum::<f64>() / times.len() as f64;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(i as f64 - 0.3, mean), (i as f64 + 0.3, mean)],
                BLACK.stroke_width(2),
            )))?;
        }
    }
    Ok(())
}

fn draw_bytes<B>(area: &Area<'_, B>, m: &Measured) -> DrawResult
where
    B: DrawingBackend,
    B::ErrorType: 'static,
{
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let y_max = m
        .nodes
        .iter()
        .map(|n| mib(n.up.max(n.down)))
        .fold(1.0_f64, f64::max)
        * 1.1;
    let n = m.nodes.len();
    let mut chart = ChartBuilder::on(area)
        .caption(
            format!("{}: MiB up (solid) and down (light) per peer", m.scenario),
            (FAMILY, 18),
        )
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..n as f64, 0.0..y_max)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("peer (colour: type)")
        .y_desc("MiB")
        .label_style((FAMILY, 12))
        .draw()?;
    for (i, node) in m.nodes.iter().enumerate() {
        let c = colour(node.role);
        let x = i as f64;
        chart.draw_series([
            Rectangle::new([(x + 0.1, 0.0), (x + 0.5, mib(node.up))], c.filled()),
            Rectangle::new(
                [(x + 0.5, 0.0), (x + 0.9, mib(node.down))],
                c.mix(0.35).filled(),
            ),
        ])?;
    }
    Ok(())
}

fn draw_fairness<B>(area: &Area<'_, B>, runs: &[(String, Option<f64>)]) -> DrawResult
where
    B: DrawingBackend,
    B::ErrorType: 'static,
{
    let mut chart = ChartBuilder::on(area)
        .caption(
            "Jain's fairness index of honest upload/download ratios",
            (FAMILY, 18),
        )
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(45)
        .build_cartesian_2d(0.0..runs.len().max(1) as f64, 0.0..1.05)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(runs.len().max(1))
        .x_label_formatter(&|x: &f64| {
            let i = x.floor() as usize;
            runs.get(i).map_or(String::new(), |(name, _)| name.clone())
        })
        .label_style((FAMILY, 12))
        .draw()?;
    for (i, (_, j)) in runs.iter().enumerate() {
        if let Some(j) = j {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(i as f64 + 0.2, 0.0), (i as f64 + 0.8, *j)],
                colour(Role::Honest).filled(),
            )))?;
        }
    }
    chart.draw_series(std::iter::once(PathElement::new(
        vec![(0.0, 0.9), (runs.len().max(1) as f64, 0.9)],
        BLACK.stroke_width(1),
    )))?;
    Ok(())
}

/// Every figure of one scenario.
pub fn scenario_figures(dir: &Path, m: &Measured) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    files.extend(both(
        dir,
        &format!("{}-reputation", m.scenario),
        Figure::Reputation(m),
    )?);
    files.extend(both(
        dir,
        &format!("{}-completion", m.scenario),
        Figure::Completion(m),
    )?);
    files.extend(both(
        dir,
        &format!("{}-bytes", m.scenario),
        Figure::Bytes(m),
    )?);
    Ok(files)
}

/// The fairness figure over every scenario run.
pub fn fairness_figure(dir: &Path, runs: &[(String, Option<f64>)]) -> anyhow::Result<Vec<PathBuf>> {
    both(dir, "fairness", Figure::Fairness(runs))
}
