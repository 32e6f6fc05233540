//! The soak's picture: answers/s and 5xx/s, then each instance's resident memory, then its
//! open file descriptors, then the open-loop reads' latency (p50 and p99 of each second),
//! against time, with the fault windows shaded across all four.

use std::fmt::Write as _;

use super::report::Run;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const PANEL: f64 = 150.0;
const GAP: f64 = 40.0;
const TOP: f64 = 45.0;
const INSTANCE_COLOURS: [&str; 3] = ["#1f77b4", "#2ca02c", "#9467bd"];

/// The SVG document of `run`.
pub fn timeline(run: &Run<'_>) -> String {
    let seconds = run.ledger.seconds();
    let span = run.seconds.max(1.0);
    let plot = WIDTH - LEFT - RIGHT;
    let height = TOP + 4.0 * PANEL + 3.0 * GAP + 50.0 + 14.0 * run.windows.len() as f64;
    let x = |t: f64| LEFT + plot * (t / span).clamp(0.0, 1.0);
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{LEFT}\" y=\"18\" font-size=\"14\">Soak, {}: {:.0} s, 3 instances on {}; fault windows shaded</text>\n",
        run.framework, run.seconds, run.store
    );

    // The windows, across the three panels, with their names above the first.
    let bottom = TOP + 4.0 * PANEL + 3.0 * GAP;
    let legend = bottom + 40.0;
    for (n, window) in run.windows.iter().enumerate() {
        let (from, to) = (x(window.start), x(window.end));
        let _ = writeln!(
            svg,
            "<rect x=\"{from:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#f4b183\" fill-opacity=\"0.35\"/>",
            (to - from).max(1.0),
            bottom - TOP
        );
        // Its number in the window (staggered: windows may overlap), its name below.
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#a0522d\" font-weight=\"bold\">{}</text>\n\
             <text x=\"{LEFT}\" y=\"{:.1}\" fill=\"#a0522d\">{}: {} ({:.0}–{:.0} s)</text>",
            from + 3.0,
            TOP + 12.0 + 12.0 * (n % 2) as f64,
            n + 1,
            legend + 14.0 * n as f64,
            n + 1,
            escape(&window.name),
            window.start,
            window.end
        );
    }

    // Panel 1: answers and 5xx per second.
    let requests: Vec<(f64, f64)> = seconds
        .iter()
        .enumerate()
        .map(|(t, s)| (t as f64 + 0.5, s.requests as f64))
        .collect();
    let errors: Vec<(f64, f64)> = seconds
        .iter()
        .enumerate()
        .map(|(t, s)| (t as f64 + 0.5, s.server_errors as f64))
        .collect();
    let most = requests.iter().map(|p| p.1).fold(1.0, f64::max);
    panel(&mut svg, 0, "answers/s (grey), 5xx/s (red)", most, "", span);
    line(&mut svg, 0, &requests, most, span, "#7f7f7f");
    line(&mut svg, 0, &errors, most, span, "#d62728");

    // Panels 2 and 3: per instance.
    let instances = run.samples.first().map_or(0, |s| s.pids.len());
    let rss_most = run
        .samples
        .iter()
        .flat_map(|s| s.rss.iter().flatten())
        .map(|&b| b as f64 / (1024.0 * 1024.0))
        .fold(1.0, f64::max);
    let fds_most = run
        .samples
        .iter()
        .flat_map(|s| s.fds.iter().flatten())
        .map(|&n| n as f64)
        .fold(1.0, f64::max);
    panel(
        &mut svg,
        1,
        "resident memory per instance",
        rss_most,
        " MiB",
        span,
    );
    panel(
        &mut svg,
        2,
        "open file descriptors per instance",
        fds_most,
        "",
        span,
    );
    for i in 0..instances {
        let colour = INSTANCE_COLOURS[i % INSTANCE_COLOURS.len()];
        // A restart (a new pid) starts a new line.
        let mut rss = Vec::new();
        let mut fds = Vec::new();
        let mut pid = None;
        for sample in &run.samples {
            if sample.pids[i] != pid {
                line(&mut svg, 1, &rss, rss_most, span, colour);
                line(&mut svg, 2, &fds, fds_most, span, colour);
                rss.clear();
                fds.clear();
                pid = sample.pids[i];
            }
            if let Some(bytes) = sample.rss[i] {
                rss.push((sample.at, bytes as f64 / (1024.0 * 1024.0)));
            }
            if let Some(n) = sample.fds[i] {
                fds.push((sample.at, n as f64));
            }
        }
        line(&mut svg, 1, &rss, rss_most, span, colour);
        line(&mut svg, 2, &fds, fds_most, span, colour);
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"{colour}\">instance {i}</text>",
            WIDTH - RIGHT - 70.0 * (instances - i) as f64,
            TOP + PANEL + GAP - 6.0
        );
    }

    // Panel 4: the open-loop reads' latency, p50 and p99 of each second, in ms.
    let mut by_second: Vec<Vec<f64>> = Vec::new();
    for latency in run.ledger.latencies() {
        let second = latency.due.max(0.0) as usize;
        if by_second.len() <= second {
            by_second.resize(second + 1, Vec::new());
        }
        by_second[second].push(f64::from(latency.took) * 1000.0);
    }
    let mut p50 = Vec::new();
    let mut p99 = Vec::new();
    for (second, took) in by_second.iter_mut().enumerate() {
        if took.is_empty() {
            continue;
        }
        took.sort_by(f64::total_cmp);
        let at = |q: f64| took[((took.len() as f64 * q).ceil() as usize).clamp(1, took.len()) - 1];
        p50.push((second as f64 + 0.5, at(0.5)));
        p99.push((second as f64 + 0.5, at(0.99)));
    }
    let latency_most = p99.iter().map(|p| p.1).fold(1.0, f64::max);
    panel(
        &mut svg,
        3,
        "open-loop reads: latency from when each was due, p50 (grey) and p99 (blue) of each second",
        latency_most,
        " ms",
        span,
    );
    line(&mut svg, 3, &p50, latency_most, span, "#7f7f7f");
    line(&mut svg, 3, &p99, latency_most, span, "#1f77b4");

    // The time axis, under the last panel.
    let step = if span > 300.0 { 60.0 } else { 10.0 };
    let mut t = 0.0;
    while t <= span {
        let _ = writeln!(
            svg,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{t:.0}s</text>",
            x(t),
            bottom + 16.0
        );
        t += step;
    }
    svg.push_str("</svg>\n");
    svg
}

/// The frame, title and scale of panel `n` (0 at the top), from 0 to `most`.
fn panel(svg: &mut String, n: usize, title: &str, most: f64, unit: &str, _span: f64) {
    let top = TOP + n as f64 * (PANEL + GAP);
    let plot = WIDTH - LEFT - RIGHT;
    let _ = writeln!(
        svg,
        "<rect x=\"{LEFT}\" y=\"{top}\" width=\"{plot}\" height=\"{PANEL}\" fill=\"none\" stroke=\"#999\"/>\n\
         <text x=\"{LEFT}\" y=\"{:.1}\">{}</text>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{most:.0}{unit}</text>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">0</text>",
        top - 6.0,
        escape(title),
        LEFT - 6.0,
        top + 10.0,
        LEFT - 6.0,
        top + PANEL
    );
}

/// A polyline of `points` (seconds, value) in panel `n`.
fn line(svg: &mut String, n: usize, points: &[(f64, f64)], most: f64, span: f64, colour: &str) {
    if points.is_empty() {
        return;
    }
    let top = TOP + n as f64 * (PANEL + GAP);
    let plot = WIDTH - LEFT - RIGHT;
    let coordinates: Vec<String> = points
        .iter()
        .map(|&(t, v)| {
            format!(
                "{:.1},{:.1}",
                LEFT + plot * (t / span).clamp(0.0, 1.0),
                top + PANEL - PANEL * (v / most).clamp(0.0, 1.0)
            )
        })
        .collect();
    let _ = writeln!(
        svg,
        "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.2\" points=\"{}\"/>",
        coordinates.join(" ")
    );
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
