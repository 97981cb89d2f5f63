#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `verdict report` end to end: the header facts (version, git revision,
//! SOURCE_DATE_EPOCH), and the page in Debian's headless chromium: the
//! script runs, the matrix filter hides rows, the policy table is shown, the
//! page does not scroll sideways at 800 px, and screenshots at 800 px and at
//! a wide size are decoded and checked.

mod common;
use common::root;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The shop example with the frontend's backend port wrong (a denied hop),
/// a second Gateway with three listeners without routes, and an Ingress.
const INPUTS: [&str; 5] = [
    "examples/shop-gateway/namespaces.yaml",
    "examples/shop-gateway/workloads.yaml",
    "examples/shop-gateway/gateway.yaml",
    "examples/broken/gateway-wrong-port/",
    "crates/verdict-core/tests/data/report/",
];

const EPOCH: &str = "1700000000";

fn report(out: &Path, epoch: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_verdict"));
    c.current_dir(root())
        .args(["report", "-o", out.to_str().unwrap()])
        .args(INPUTS);
    match epoch {
        Some(e) => c.env("SOURCE_DATE_EPOCH", e),
        None => c.env_remove("SOURCE_DATE_EPOCH"),
    };
    c.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

fn out_dir() -> PathBuf {
    let d = root().join("target/report-test");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The page states verdict's version and git revision (those of
/// `verdict --version`), the inputs, and the time from SOURCE_DATE_EPOCH;
/// with it, two runs write the same bytes.
#[test]
fn report_header_and_source_date_epoch() {
    let dir = out_dir();
    let (a, b) = (dir.join("epoch-a.html"), dir.join("epoch-b.html"));
    for f in [&a, &b] {
        let o = report(f, Some(EPOCH));
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    }
    let page = std::fs::read_to_string(&a).unwrap();
    assert_eq!(page, std::fs::read_to_string(&b).unwrap());
    assert!(page.contains(
        "<dd id=\"meta-time\"><time datetime=\"2023-11-14T22:13:20Z\">2023-11-14T22:13:20Z</time></dd>"
    ));
    let v = Command::new(env!("CARGO_BIN_EXE_verdict"))
        .arg("--version")
        .output()
        .unwrap();
    // `verdict 0.1.0 (git abc1234)`
    let v = text(&v.stdout);
    let (version, rev) = v.trim().trim_end_matches(')').split_once(" (git ").unwrap();
    let version = version.rsplit(' ').next().unwrap();
    assert_eq!(version, env!("CARGO_PKG_VERSION"));
    assert!(page.contains(&format!("<dd id=\"meta-version\">{version}</dd>")));
    assert!(
        page.contains(&format!("<dd id=\"meta-revision\">{rev}</dd>")),
        "{page:.3000}"
    );
    for i in INPUTS {
        assert!(page.contains(&format!("<li><code>{i}</code></li>")), "{i}");
    }
    // Without it, the time is now: another second, same form.
    let c = dir.join("epoch-now.html");
    let o = report(&c, None);
    assert_eq!(o.status.code(), Some(0));
    let now = std::fs::read_to_string(&c).unwrap();
    let t = now.split("<time datetime=\"").nth(1).unwrap();
    let t = &t[..t.find('"').unwrap()];
    assert!(t.len() == 20 && t.ends_with('Z') && t > "2024", "{t}");
}

/// A malformed SOURCE_DATE_EPOCH is refused (exit 2), not ignored.
#[test]
fn malformed_source_date_epoch_is_an_error() {
    let f = out_dir().join("epoch-bad.html");
    let _ = std::fs::remove_file(&f);
    for bad in ["yesterday", "-5", "1.5", ""] {
        let o = report(&f, Some(bad));
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(
            text(&o.stderr).contains("SOURCE_DATE_EPOCH="),
            "{}",
            text(&o.stderr)
        );
        assert!(!f.exists(), "no page written for {bad:?}");
    }
}

fn chromium() -> PathBuf {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("the report is tested in Debian's chromium: `apt-get install chromium` (.ci/run installs it)")
}

fn headless(profile: &Path, extra: &[&str], url: &str) -> Output {
    let mut args = vec![
        "--headless".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--hide-scrollbars".into(),
        "--force-device-scale-factor=1".into(),
        "--enable-logging=stderr".into(),
        "--v=0".into(),
        format!("--user-data-dir={}", profile.display()),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    args.push(url.to_string());
    let o = Command::new(chromium()).args(&args).output().unwrap();
    assert!(!text(&o.stderr).contains("Uncaught"), "{}", text(&o.stderr));
    o
}

/// The DOM after the page script ran, at `width` px.
fn dom(profile: &Path, width: u32, url: &str) -> String {
    let o = headless(
        profile,
        &[&format!("--window-size={width},1200"), "--dump-dom"],
        url,
    );
    let d = text(&o.stdout);
    assert!(
        d.contains("data-ready=\"true\""),
        "page script did not finish:\n{}",
        text(&o.stderr)
    );
    assert!(d.contains("data-errors=\"0\""), "script errors on the page");
    d
}

/// The value of `data-NAME="..."` on `<body>`.
fn body_data(dom: &str, name: &str) -> String {
    let b = &dom[dom.find("<body").unwrap()..];
    let b = &b[..b.find('>').unwrap()];
    let v = b
        .split(&format!("data-{name}=\""))
        .nth(1)
        .unwrap_or_else(|| panic!("no data-{name}: {b}"));
    v[..v.find('"').unwrap()].to_string()
}

/// The matrix rows of the page: (from, hidden).
fn matrix_rows(dom: &str) -> Vec<(String, bool)> {
    let t = &dom[dom.find("<table id=\"matrix\">").unwrap()..];
    let t = &t[..t.find("</table>").unwrap()];
    t.split("<tr")
        .skip(2)
        .map(|r| {
            let hidden = r[..r.find('>').unwrap()].contains("hidden");
            let td = &r[r.find("<td").unwrap()..];
            let from = &td[td.find('>').unwrap() + 1..];
            (from[..from.find('<').unwrap()].to_string(), hidden)
        })
        .collect()
}

#[test]
fn report_renders_in_headless_chromium() {
    let dir = out_dir();
    let html = dir.join("report.html");
    let o = report(&html, Some(EPOCH));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        !page.contains("<script src") && !page.contains("<link "),
        "self-contained"
    );
    let url = format!("file://{}", html.display());

    // At 800 px: the script ran, every node is drawn (world, two Gateways,
    // the Ingress controller, two backends), the denied hop is red, and
    // the page is no wider than the window.
    let d = dom(&dir.join("profile-dom"), 800, &url);
    assert_eq!(body_data(&d, "nodes"), "6");
    assert!(
        d.contains("class=\"edge denied\""),
        "the broken hop is drawn as denied"
    );
    assert!(d.contains("3 listeners without routes"));
    let (scroll, view) = (
        body_data(&d, "scroll-width").parse::<u32>().unwrap(),
        body_data(&d, "viewport-width").parse::<u32>().unwrap(),
    );
    assert!(view > 700 && view <= 800, "viewport {view}");
    assert!(
        scroll <= view,
        "the page scrolls sideways at 800 px: {scroll} > {view}"
    );
    // The first node's policy is shown as a table; the hint is hidden.
    let shown = body_data(&d, "shown");
    let section = d
        .split(&format!(
            "<section class=\"policy-view\" id=\"policy-{shown}\">"
        ))
        .nth(1)
        .unwrap_or_else(|| panic!("policy {shown} not shown"));
    let section = &section[..section.find("</section>").unwrap()];
    assert!(section.contains("<th>rule (file:line)</th>"), "{section}");
    assert!(
        section.contains("<tbody><tr class=\"allowed\"><td>"),
        "{section}"
    );
    let visible = d
        .split("<section class=\"policy-view\"")
        .skip(1)
        .filter(|s| !s[..s.find('>').unwrap()].contains("hidden"))
        .count();
    assert_eq!(visible, 1, "one policy shown");
    assert!(d.contains("<p id=\"policy-hint\" hidden=\"\">"));
    // Header facts.
    assert!(d.contains("2023-11-14T22:13:20Z"));
    assert!(d.contains("id=\"meta-revision\""));

    // The matrix filter: all rows without a filter; through the query
    // string, only the matching ones.
    let all = matrix_rows(&d);
    assert!(all.len() >= 4 && all.iter().all(|(_, h)| !h), "{all:?}");
    assert_eq!(body_data(&d, "matrix-shown"), all.len().to_string());
    let want = all
        .iter()
        .filter(|(f, _)| f.contains("reserved:host"))
        .count();
    assert!(want > 0 && want < all.len(), "{all:?}");
    let f = dom(
        &dir.join("profile-filter"),
        800,
        &format!("{url}?from=Reserved:HOST"),
    );
    let rows = matrix_rows(&f);
    assert_eq!(rows.len(), all.len());
    for (from, hidden) in &rows {
        assert_eq!(*hidden, !from.contains("reserved:host"), "{from}");
    }
    assert_eq!(body_data(&f, "matrix-shown"), want.to_string());
    assert!(f.contains(&format!("{want} of {} connections shown", all.len())));
    let none = dom(
        &dir.join("profile-none"),
        800,
        &format!("{url}?q=no-such-name"),
    );
    assert_eq!(body_data(&none, "matrix-shown"), "0");
    assert!(matrix_rows(&none).iter().all(|(_, h)| *h));

    // Screenshots: at 800 px nothing is cut at the right edge (the page
    // margin stays blank); wide, the graph shows its green and red edges.
    let narrow = screenshot(&dir, "report-800.png", 800, &url);
    assert_eq!(narrow.width, 800);
    assert!(narrow.ink() > 0.02, "blank page at 800 px");
    assert!(
        narrow.column_blank_from(800 - 10),
        "content runs off the right edge at 800 px"
    );
    let wide = screenshot(&dir, "report.png", 1400, &url);
    assert_eq!(wide.width, 1400);
    assert!(wide.ink() > 0.02, "blank page");
    assert!(
        wide.count_near([0x2e, 0x9d, 0x44]) > 50,
        "no green (allowed) edge drawn"
    );
    assert!(
        wide.count_near([0xd9, 0x30, 0x25]) > 20,
        "no red (denied) edge drawn"
    );
    println!("report screenshot: {}", dir.join("report.png").display());
    println!(
        "report screenshot: {}",
        dir.join("report-800.png").display()
    );
}

/// A grouped matrix in the browser: the from filter matches a group by a
/// member not shown in its row, and `?group=G1` opens the group, whose
/// members the script lists from the page's data, each carrying its
/// panel's key.
#[test]
fn grouped_matrix_members_in_headless_chromium() {
    let dir = out_dir();
    let input = root().join("crates/verdict-core/tests/data/report-grouped/big.yaml");
    let html = dir.join("grouped.html");
    let o = Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args([
            "report",
            "-o",
            html.to_str().unwrap(),
            input.to_str().unwrap(),
        ])
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let url = format!("file://{}", html.display());
    // Two rows: G1 -> G1 and reserved:host -> G1; big/app-7 is a member of
    // G1 but not the member its row shows.
    let d = dom(
        &dir.join("profile-group"),
        800,
        &format!("{url}?from=BIG/app-7&group=G1"),
    );
    let rows = matrix_rows(&d);
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (from, hidden) in &rows {
        assert_eq!(*hidden, from.contains("reserved:host"), "{from}");
    }
    assert_eq!(body_data(&d, "matrix-shown"), "1");
    let group = &d[d.find("<tr id=\"group-G1\">").expect("group row")..];
    let group = &group[..group.find("</tr>").unwrap()];
    let details = &group[group.find("<details").unwrap()..];
    let details = &details[..details.find('>').unwrap()];
    assert!(
        details.contains(" open=") && details.contains(" data-filled=\"true\""),
        "{details}"
    );
    let spans = group
        .matches("<span class=\"clickable\" tabindex=\"0\" data-name=\"p")
        .count();
    assert_eq!(spans, 40, "{group}");
    for a in 0..40 {
        assert!(
            group.contains(&format!("\">big/app-{a}</span>")),
            "app-{a}: {group}"
        );
    }
    // A name in no group hides every row; closed groups list nothing.
    let none = dom(
        &dir.join("profile-group-none"),
        800,
        &format!("{url}?to=big/app-99"),
    );
    assert_eq!(body_data(&none, "matrix-shown"), "0");
    assert!(!none.contains("data-filled"));
}

struct Image {
    width: u32,
    height: u32,
    /// RGB, row by row.
    px: Vec<[u8; 3]>,
}

impl Image {
    /// Share of pixels that are not white.
    fn ink(&self) -> f64 {
        let n = self.px.iter().filter(|p| **p != [255, 255, 255]).count();
        n as f64 / self.px.len() as f64
    }

    /// Whether every pixel from column `x` rightwards is white.
    fn column_blank_from(&self, x: u32) -> bool {
        (0..self.height).all(|y| {
            (x..self.width).all(|c| self.px[(y * self.width + c) as usize] == [255, 255, 255])
        })
    }

    fn count_near(&self, c: [u8; 3]) -> usize {
        self.px
            .iter()
            .filter(|p| (0..3).all(|i| p[i].abs_diff(c[i]) <= 24))
            .count()
    }
}

fn screenshot(dir: &Path, name: &str, width: u32, url: &str) -> Image {
    let png = dir.join(name);
    let _ = std::fs::remove_file(&png);
    let profile = dir.join(format!("profile-{name}"));
    headless(
        &profile,
        &[
            &format!("--window-size={width},1600"),
            &format!("--screenshot={}", png.display()),
        ],
        url,
    );
    let file = std::fs::File::open(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let step = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("unexpected PNG colour type {other:?}"),
    };
    let px = buf[..info.buffer_size()]
        .chunks_exact(step)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    Image {
        width: info.width,
        height: info.height,
        px,
    }
}
