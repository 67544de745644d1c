//! `docs/BENCHMARKS.md` and its chart (a hand-written SVG).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Result;

use crate::stats::{NOISY_SPREAD, fmt_duration};

/// One target of the issues, with what this run measured.
pub(crate) struct Target {
    pub(crate) name: String,
    pub(crate) measured: String,
    /// `None`: not measured in this run.
    pub(crate) met: Option<bool>,
}

/// One point of the chart.
pub(crate) struct ChartPoint {
    pub(crate) series: String,
    pub(crate) n: u64,
    pub(crate) seconds: f64,
}

pub(crate) struct Report {
    command: String,
    quick: bool,
    sections: Vec<(String, String)>,
    targets: Vec<Target>,
    pub(crate) chart: Vec<ChartPoint>,
    /// /proc/loadavg at the start and the end of the run.
    pub(crate) load_before: String,
    pub(crate) load_after: String,
    elapsed: Duration,
}

/// The chart's file name, next to the report.
const CHART: &str = "bench-sync-time.svg";

pub(crate) fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "| {} |", headers.join(" | "));
    let _ = writeln!(s, "|{}", headers.iter().map(|_| "---|").collect::<String>());
    for r in rows {
        let _ = writeln!(s, "| {} |", r.join(" | "));
    }
    s
}

impl Report {
    pub(crate) fn new(command: &str, quick: bool) -> Self {
        Self {
            command: command.to_string(),
            quick,
            sections: Vec::new(),
            targets: Vec::new(),
            chart: Vec::new(),
            load_before: String::new(),
            load_after: String::new(),
            elapsed: Duration::ZERO,
        }
    }

    pub(crate) fn section(&mut self, title: &str, body: &str) {
        self.sections.push((title.to_string(), body.to_string()));
    }

    /// Drops the sections and targets recorded so far (a `--only` run measures the Ed25519
    /// rates for its own use, but merges only its group's figures).
    pub(crate) fn forget(&mut self) {
        self.sections.clear();
        self.targets.clear();
    }

    pub(crate) fn target(&mut self, t: Target) {
        self.targets.push(t);
    }

    pub(crate) fn finish(&mut self, elapsed: Duration) {
        self.elapsed = elapsed;
    }

    pub(crate) fn write(&self, out: &Path) -> Result<()> {
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir)?;
            std::fs::write(dir.join(CHART), self.svg())?;
        }
        std::fs::write(out, self.markdown())?;
        Ok(())
    }

    /// Merges this (partial, `--only`) run into the report at `out`: each of its sections
    /// replaces the section whose title starts the same way (up to " (") or is appended; each
    /// of its targets replaces the row of the same name or is appended to the targets table.
    /// Everything else in the file, and the chart, stays as the earlier run wrote it. Without
    /// a report at `out`, writes a whole (partial) report instead.
    pub(crate) fn merge_into(&self, out: &Path) -> Result<()> {
        let Ok(mut doc) = std::fs::read_to_string(out) else {
            return self.write(out);
        };
        let stamp = format!(
            "Merged into this file from a later run: `{}`, {} (UTC), {}, load average {} at \
             the start and {} at the end, run time {}. The other sections come from the run \
             described at the top.",
            self.command,
            today(),
            machine(),
            self.load_before,
            self.load_after,
            fmt_duration(self.elapsed)
        );
        for t in &self.targets {
            let mut row = target_row(t);
            row[2] += &format!(" (merged: `{}`, {})", self.command, today());
            let line = format!("| {} |", row.join(" | "));
            let prefix = format!("| {} |", t.name);
            doc = replace_or_insert_row(&doc, &prefix, &line);
        }
        for (title, body) in &self.sections {
            let key = title.split(" (").next().unwrap_or(title);
            let section = format!("## {title}\n\n_{stamp}_\n\n{body}\n\n");
            doc = replace_or_append_section(&doc, &format!("## {key}"), &section);
        }
        if !doc.contains(MERGED_NOTE)
            && let Some(at) = doc.find("\n\n## Run")
        {
            doc.insert_str(at, &format!("\n\n{MERGED_NOTE}"));
        }
        std::fs::write(out, doc)?;
        Ok(())
    }

    fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Benchmarks\n");
        let _ = writeln!(
            s,
            "Written by `{}` — do not edit by hand; rerun the command instead. Every figure \
             below comes from that one run on the machine described here; docsync and the \
             implementations it is compared with ran side by side in it.\n",
            self.command
        );
        if self.quick {
            let _ = writeln!(
                s,
                "**Quick mode**: small sizes and few repetitions, to show that the command \
                 works. These are not the sizes of the targets; the verdicts below apply to \
                 the sizes shown only.\n"
            );
        }
        let _ = writeln!(s, "## Run\n");
        let _ = writeln!(s, "- command: `{}`", self.command);
        let _ = writeln!(s, "- date: {} (UTC)", today());
        let _ = writeln!(s, "- machine: {}", machine());
        let _ = writeln!(
            s,
            "- compared with: iroh-docs 0.101.0 (its redb file store), negentropy 0.5 (in \
             memory, pure reconciliation)"
        );
        let _ = writeln!(
            s,
            "- method: every timed case runs a warm-up first (not counted), then the measured \
             repetitions; tables show the median. A case whose repetitions spread (max − min) \
             by more than {:.0}% of the median is marked noisy. \"(1 run)\" marks cases that ran \
             once. A case stops repeating once it has used its time budget.",
            NOISY_SPREAD * 100.0
        );
        let _ = writeln!(
            s,
            "- load average (1, 5, 15 min) at the start: {}; at the end: {} (the machine is \
             shared: other work running at the same time slows both sides and widens the \
             spread)",
            self.load_before, self.load_after
        );
        let _ = writeln!(s, "- run time: {}\n", fmt_duration(self.elapsed));
        let _ = writeln!(s, "## Targets\n");
        let rows = self.targets.iter().map(target_row).collect();
        s += &table(&["target", "verdict", "measured"], rows);
        let _ = writeln!(
            s,
            "\n![Sync time against document size]({CHART})\n\n\
             Sync time against document size (file stores, log–log; [{CHART}]({CHART})).\n"
        );
        for (title, body) in &self.sections {
            let _ = writeln!(s, "## {title}\n\n{body}\n");
        }
        s
    }

    fn svg(&self) -> String {
        let (w, h) = (760.0f64, 460.0f64);
        let (left, right, top, bottom) = (80.0, 230.0, 30.0, 60.0);
        let pw = w - left - right;
        let ph = h - top - bottom;
        let mut s = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" \
             viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
             <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
             <text x=\"{}\" y=\"18\" text-anchor=\"middle\" font-size=\"14\">Sync time vs \
             document size (file stores, log–log)</text>\n",
            left + pw / 2.0
        );
        let pts: Vec<&ChartPoint> = self
            .chart
            .iter()
            .filter(|p| p.seconds > 0.0 && p.n > 0)
            .collect();
        if pts.is_empty() {
            s += "<text x=\"100\" y=\"100\">no data</text></svg>\n";
            return s;
        }
        let lx = |n: f64| n.log10();
        let xmin = pts.iter().map(|p| lx(p.n as f64)).fold(f64::MAX, f64::min);
        let xmax = pts.iter().map(|p| lx(p.n as f64)).fold(f64::MIN, f64::max);
        let ymin = pts
            .iter()
            .map(|p| p.seconds.log10())
            .fold(f64::MAX, f64::min)
            .floor();
        let ymax = pts
            .iter()
            .map(|p| p.seconds.log10())
            .fold(f64::MIN, f64::max)
            .ceil();
        let (xmin, xmax) = if xmax > xmin {
            (xmin, xmax)
        } else {
            (xmin - 1.0, xmax + 1.0)
        };
        let ymax = if ymax > ymin { ymax } else { ymin + 1.0 };
        let px = |n: u64| left + (lx(n as f64) - xmin) / (xmax - xmin) * pw;
        let py = |sec: f64| top + (ymax - sec.log10()) / (ymax - ymin) * ph;
        // Axes and decade grid.
        let _ = writeln!(
            s,
            "<rect x=\"{left}\" y=\"{top}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" \
             stroke=\"#444\"/>"
        );
        let mut e = ymin as i32;
        while e as f64 <= ymax {
            let y = top + (ymax - e as f64) / (ymax - ymin) * ph;
            let _ = writeln!(
                s,
                "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"#ddd\"/>\
                 <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                left + pw,
                left - 6.0,
                y + 4.0,
                fmt_duration(Duration::from_secs_f64(10f64.powi(e)))
            );
            e += 1;
        }
        let mut ns: Vec<u64> = pts.iter().map(|p| p.n).collect();
        ns.sort_unstable();
        ns.dedup();
        for n in &ns {
            let x = px(*n);
            let _ = writeln!(
                s,
                "<line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#ddd\"/>\
                 <text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                top + ph,
                top + ph + 18.0,
                fmt_n(*n)
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">entries in the document (N)</text>\
             <text x=\"18\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {})\">\
             median sync time</text>",
            left + pw / 2.0,
            h - 18.0,
            top + ph / 2.0,
            top + ph / 2.0
        );
        let mut series: Vec<&str> = pts.iter().map(|p| p.series.as_str()).collect();
        series.sort_unstable();
        series.dedup();
        for (i, name) in series.iter().enumerate() {
            let colour = if name.starts_with("docsync") {
                "#1b7837"
            } else {
                "#c2410c"
            };
            let dash = if name.contains("in sync") {
                " stroke-dasharray=\"6 4\""
            } else {
                ""
            };
            let mut line: Vec<&&ChartPoint> = pts.iter().filter(|p| p.series == *name).collect();
            line.sort_by_key(|p| p.n);
            let d: Vec<String> = line
                .iter()
                .map(|p| format!("{:.1},{:.1}", px(p.n), py(p.seconds)))
                .collect();
            let _ = writeln!(
                s,
                "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"{dash}/>",
                d.join(" ")
            );
            for p in &line {
                let _ = writeln!(
                    s,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"/>",
                    px(p.n),
                    py(p.seconds)
                );
            }
            let ly = top + 10.0 + i as f64 * 22.0;
            let lx0 = left + pw + 14.0;
            let _ = writeln!(
                s,
                "<line x1=\"{lx0}\" y1=\"{ly}\" x2=\"{}\" y2=\"{ly}\" stroke=\"{colour}\" \
                 stroke-width=\"2\"{dash}/><text x=\"{}\" y=\"{}\">{name}</text>",
                lx0 + 28.0,
                lx0 + 34.0,
                ly + 4.0
            );
        }
        s += "</svg>\n";
        s
    }
}

/// The line a report of a whole run gets when a later `--only` run is merged into it.
const MERGED_NOTE: &str = "Sections whose first line says \"Merged into this file\" were \
    measured later by a `--only` run of one group of workloads and merged into this report; \
    that line names their command, date and machine load.";

fn target_row(t: &Target) -> Vec<String> {
    vec![
        t.name.clone(),
        match t.met {
            Some(true) => "**met**".into(),
            Some(false) => "**not met**".into(),
            None => "not measured".into(),
        },
        t.measured.clone(),
    ]
}

/// `doc` with the line starting with `prefix` replaced by `line`, or with `line` added at the
/// end of the first table after "## Targets".
fn replace_or_insert_row(doc: &str, prefix: &str, line: &str) -> String {
    let mut lines: Vec<String> = doc.lines().map(str::to_string).collect();
    if let Some(l) = lines.iter_mut().find(|l| l.starts_with(prefix)) {
        *l = line.to_string();
    } else if let Some(start) = lines.iter().position(|l| l == "## Targets") {
        let table_start = lines[start..]
            .iter()
            .position(|l| l.starts_with('|'))
            .map_or(start + 1, |p| start + p);
        let end = lines[table_start..]
            .iter()
            .position(|l| !l.starts_with('|'))
            .map_or(lines.len(), |p| table_start + p);
        lines.insert(end, line.to_string());
    } else {
        lines.push(line.to_string());
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// `doc` with the section whose heading line starts with `heading` replaced by `section`
/// (up to the next "## " heading), or with `section` appended.
fn replace_or_append_section(doc: &str, heading: &str, section: &str) -> String {
    let start = doc
        .match_indices("## ")
        .map(|(i, _)| i)
        .find(|&i| (i == 0 || doc[..i].ends_with('\n')) && doc[i..].starts_with(heading));
    match start {
        Some(i) => {
            let end = doc[i + 3..]
                .find("\n## ")
                .map_or(doc.len(), |p| i + 3 + p + 1);
            format!("{}{section}{}", &doc[..i], &doc[end..])
        }
        None => {
            let mut out = doc.trim_end().to_string();
            out += "\n\n";
            out += section;
            out
        }
    }
}

fn fmt_n(n: u64) -> String {
    if n >= 1_000_000 && n.is_multiple_of(1_000_000) {
        format!("{}M", n / 1_000_000)
    } else if n >= 1000 && n.is_multiple_of(1000) {
        format!("{}k", n / 1000)
    } else {
        n.to_string()
    }
}

/// Cores and CPU model from /proc/cpuinfo, memory from /proc/meminfo, the kernel.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU".to_string(), |m| m.trim().to_string());
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(String::new(), |kb| {
            format!(", {:.0} GiB RAM", kb as f64 / 1024.0 / 1024.0)
        });
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| format!(", Linux {}", k.trim()))
        .unwrap_or_default();
    format!("{cores} cores, {model}{mem}{kernel}")
}

/// Today's date (UTC) from the system clock, without a date library.
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let days = (secs / 86_400) as i64;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}
