//! The status page at `/` as people see it. A real guardian (`guardian
//! run`, Kubernetes mode against the stateful fake API server, probing the
//! NEXTGEN simulator) goes through a bad rollout: a migration is declared,
//! 1.8.2 goes out, payments turns slow, the guard pauses and rolls back, the
//! incident stays open. Then headless Chromium (Debian's `chromium`) loads
//! `/`: the rendered DOM is checked section by section against the JSON
//! API, nothing in it points outside, no secret of the config shows, the
//! layout fits a 390 px phone without horizontal scrolling, and screenshots
//! are saved with the HTML in `$CARGO_TARGET_TMPDIR/status-page/` (and, with
//! `UPDATE_SCREENSHOTS=1`, the phone one as `docs/img/status-page.png`).
//! Chromium missing: skipped with a note, failed under `CI=true`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up panics on failure by design

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use guardian::sim::{Fault, Simulator};
use regex::Regex;
use serde_json::{Value, json};
use support::eventually::eventually;
use support::fake_apiserver::FakeApiServer;
use support::guardian::Guardian;
use support::kube_guardian::{NAME, NS, TARGET, TOKEN, actions, count, image, incidents, post_json, ready, status};
use support::sim::Sim;

/// A header value from `${NEXTGEN_TOKEN}`: headers are secrets, never shown.
const HEADER_SECRET: &str = "hdr-secret-5f0c9a7e";
/// The password in a check's URL: shown without it.
const URL_PASSWORD: &str = "url-pw-b81d4e2c";
/// A migration described by an API client, with markup that must stay text.
const MIGRATION: &str = r#"backfill <img src=x onerror=alert(1)> & "segments""#;
const PAYMENTS: &str = "/api/payments/health";
/// From the fault to the pause and the rollback, with room for a slow machine.
const ACTS_WITHIN: Duration = Duration::from_secs(20);
/// The longest Chromium may take to load and render one page.
const CHROMIUM_WITHIN: Duration = Duration::from_secs(60);
const PHONE: (u32, u32) = (390, 1400);
const DESKTOP: (u32, u32) = (1280, 1600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_tells_the_rollback_story_on_a_phone_without_loading_or_leaking_anything() {
    let Some(chromium) = Chromium::find() else { return };
    let story = Story::start().await;
    story.bad_rollout_rolled_back().await;
    let g = &story.guardian;

    let html = reqwest::get(g.url("/")).await.unwrap().text().await.unwrap();
    let (s, gate) = (status(g).await, gate(g).await);
    let dom = chromium.dump_dom(&g.url("/"), PHONE).await;

    header_and_gate(&dom, &gate);
    checks(&dom, &s);
    slos(&dom, &s);
    targets(&dom, &s);
    incidents_and_actions(&dom, &incidents(g).await, &actions(g).await);
    nothing_external(&dom);
    for (what, text) in [("the served HTML", &html), ("the rendered DOM", &dom)] {
        for secret in [HEADER_SECRET, URL_PASSWORD, "pay-user"] {
            assert!(!text.contains(secret), "{secret:?} shows in {what}:\n{text}");
        }
    }
    fits_a_phone(&chromium, &html).await;
    screenshots(&chromium, &html, &g.url("/")).await;
}

/// The guardian, the cluster it guards and the simulator it probes.
struct Story {
    guardian: Guardian,
    fake: FakeApiServer,
    sim: Sim,
    _kube_dir: tempfile::TempDir,
}

impl Story {
    async fn start() -> Story {
        let fake = FakeApiServer::start().await;
        fake.seed_deployment(NS, NAME, &image("1.8.1"), 5);
        let sim = Sim::start().await;
        let kube_dir = tempfile::tempdir().unwrap();
        let kubeconfig = fake.kubeconfig(kube_dir.path());
        let envs = [
            ("KUBECONFIG", kubeconfig.to_str().unwrap()),
            ("HOSTNAME", "guardian-page"),
            ("GUARD_TOKEN", TOKEN),
            ("NEXTGEN_TOKEN", HEADER_SECRET),
        ];
        let guardian = Guardian::start(&config(&sim.sim), &envs);
        ready(&guardian).await;
        Story { guardian, fake, sim, _kube_dir: kube_dir }
    }

    /// A migration, 1.8.2 rolling out, payments slow: paused and rolled back. Payments then fails
    /// outright (the change was not the only cause), so the incident stays open and the reasons hold still.
    async fn bad_rollout_rolled_back(&self) {
        let g = &self.guardian;
        let body = json!({"target": TARGET, "description": MIGRATION, "on_breach": "rollback"});
        let (code, answer) = post_json(g, "/api/v1/migrations", &body).await;
        assert_eq!(code, 201, "{answer}");
        self.fake.simulate_rollout(NS, NAME, &image("1.8.2"));
        eventually(Duration::from_secs(5), "the rollout is seen", || async {
            status(g).await["targets"][0]["rolling_out"] == true
        })
        .await;
        self.sim.sim.faults().set(Fault::on(PAYMENTS).with_latency_ms(3500));
        eventually(ACTS_WITHIN, "paused then rolled back", || async {
            let a = actions(g).await;
            count(&a, "pause", "ok") == 1 && count(&a, "rollback", "ok") == 1
        })
        .await;
        self.fake.sync_deployment(NS, NAME);
        self.sim.sim.faults().set(Fault { status: Some(503), error_rate: 1.0, ..Fault::on(PAYMENTS) });
        eventually(Duration::from_secs(10), "payments fails, with no slow probe left in flight", || async {
            let s = status(g).await;
            let pay = &s["checks"][0];
            pay["last"]["outcome"] == "failed" && pay["over_budget_in_flight"] == false
        })
        .await;
        assert!(!incidents(g).await.is_empty(), "the incident is open");
    }
}

fn config(sim: &Simulator) -> String {
    let d = sim.dashboard();
    format!(
        r#"environment: prod
listen: "127.0.0.1:0"
storage: {{ url: "sqlite://guardian.db" }}
api: {{ token_env: GUARD_TOKEN }}
probing: {{ per_host_per_second: 1000 }}
checks:
  - name: payments-health
    url: "http://pay-user:{URL_PASSWORD}@{d}{PAYMENTS}"
    headers: {{ X-Api-Key: "${{NEXTGEN_TOKEN}}" }}
    interval: 1s
    budget: 3s
    timeout: 6s
  - name: customers-count
    url: "http://{d}/api/customers/count"
    interval: 1s
    budget: 1s
    expect: {{ json: [ {{ path: /count, min: 1 }} ] }}
  - name: domains-portfolio
    url: "http://{d}/api/domains/portfolio/status"
    interval: 1s
    budget: 2s
    expect: {{ json: [ {{ path: /total, equals: 230 }} ] }}
slos:
  - {{ name: payments, checks: [payments-health], objective: 0.999, window: 30d }}
  - {{ name: portfolio, checks: [customers-count, domains-portfolio], objective: 0.99, window: 7d }}
guard:
  mode: kubernetes
  lease: {{ duration: 3s, renew_every: 1s }}
  targets:
    - {{ kind: Deployment, namespace: {NS}, name: {NAME}, checks: [payments-health] }}
  breach: {{ window: 5, max_bad: 3, confirm_interval: 250ms }}
gate:
  stale_after: 8s
"#
    )
}

async fn gate(g: &Guardian) -> Value {
    let r = reqwest::get(g.url("/api/v1/gate?environment=prod")).await.unwrap();
    assert_eq!(r.status().as_u16(), 409, "no-go while the incident is open");
    serde_json::from_str(&r.text().await.unwrap()).unwrap()
}

fn header_and_gate(dom: &str, gate: &Value) {
    assert!(dom.contains("<title>NO-GO · Guardian · prod</title>"), "{dom}");
    assert!(dom.contains(r#"<meta http-equiv="refresh" content="5">"#), "reloads itself: {dom}");
    assert!(dom.contains(r#"<meta name="viewport" content="width=device-width,initial-scale=1">"#), "{dom}");
    let section = section(dom, "gate");
    assert!(section.contains(r#"<span class="verdict">NO-GO</span>"#), "{section}");
    let reasons = gate["reasons"].as_array().unwrap();
    let codes: Vec<&str> = reasons.iter().map(|r| r["code"].as_str().unwrap()).collect();
    for code in ["check_failing", "incident_open"] {
        assert!(codes.contains(&code), "{code} in {gate}");
    }
    for r in reasons {
        let code = format!("<code>{}</code>", r["code"].as_str().unwrap());
        assert!(section.contains(&code), "{code} missing from:\n{section}");
        let message = blur(&text(r["message"].as_str().unwrap()));
        assert!(blur(section).contains(&message), "{message:?} missing from:\n{section}");
    }
}

fn checks(dom: &str, s: &Value) {
    let section = section(dom, "checks");
    let all = s["checks"].as_array().unwrap();
    assert_eq!(section.matches("<svg class=\"spark\"").count(), all.len(), "one sparkline per check:\n{section}");
    for c in all {
        let name = c["name"].as_str().unwrap();
        let card = card(section, name);
        let budget = guardian::units::format_duration(Duration::from_secs_f64(c["budget_seconds"].as_f64().unwrap()));
        assert!(card.contains(&format!("of the {budget} budget")), "{name}'s budget:\n{card}");
        assert!(card.contains(r#"<div class="bar""#) && card.contains("<polyline"), "{name}'s bar and sparkline");
        assert!(card.contains(&text(c["url"].as_str().unwrap())), "{name}'s URL, without credentials:\n{card}");
        let state = if c["up"] == true { "OK" } else { "FAILED" };
        assert!(card.contains(&format!(">{state}</span>")), "{name} is {state}:\n{card}");
    }
    let pay = card(section, "payments-health");
    assert!(pay.contains("dashed: the 3s budget") && pay.contains(r#"<line class="budget""#), "{pay}");
    assert!(pay.matches(r#"<circle class="bad""#).count() >= 3, "the slow and failed probes are red:\n{pay}");
    assert!(pay.contains("status 503, expected 200") && pay.contains("detection bound 4.50 s"), "{pay}");
}

fn slos(dom: &str, s: &Value) {
    let section = section(dom, "slos");
    for slo in s["slos"].as_array().unwrap() {
        let name = slo["name"].as_str().unwrap();
        let card = card(section, name);
        let (objective, window) = (slo["objective"].as_f64().unwrap() * 100.0, slo["window"].as_str().unwrap());
        let objective = format!("objective {objective:.3} % over {window}");
        assert!(card.contains(&objective), "{objective}:\n{card}");
        assert!(card.contains(r#"<div class="bar" title="the gate holds below 10 % left">"#), "{card}");
    }
}

fn targets(dom: &str, s: &Value) {
    let section = section(dom, "targets");
    let t = &s["targets"][0];
    let card = card(section, TARGET);
    let badges =
        [("ARMED", t["armed"] == true), ("ROLLING OUT", t["rolling_out"] == true), ("PAUSED", t["paused"] == true)];
    for (badge, shown) in badges {
        assert_eq!(card.contains(&format!(">{badge}</span>")), shown, "{badge} against {t}:\n{card}");
    }
    assert!(t["armed"] == true, "the migration keeps it armed: {t}");
    let revision = format!("<dt>revision</dt><dd>{}</dd>", t["revision"]);
    let back_to = format!("<dt>rolled back to</dt><dd>{}</dd>", t["rolled_back_to"].as_str().unwrap());
    for want in [revision, back_to, "<dt>detection bound</dt><dd>4.50 s</dd>".into(), text(MIGRATION)] {
        assert!(card.contains(&want), "{want:?} missing from:\n{card}");
    }
    let migration = t["migrations"][0]["id"].as_str().unwrap();
    assert!(card.contains(&format!("<code>{migration}</code>")), "{card}");
    assert!(!dom.contains("<img"), "the description stays text");
}

fn incidents_and_actions(dom: &str, open: &[Value], actions: &[Value]) {
    let section_i = section(dom, "incidents");
    assert!(!open.is_empty());
    for i in open {
        let card = card(section_i, i["check"].as_str().unwrap());
        assert!(card.contains(&format!("<code>{}</code>", i["id"].as_str().unwrap())), "{card}");
        assert!(card.contains(&text(i["reason"].as_str().unwrap())), "{i}:\n{card}");
        assert!(card.contains(">OPEN "), "{card}");
    }
    let section_a = section(dom, "actions");
    for (action, outcome) in [("pause", "ok"), ("rollback", "ok")] {
        let a = actions.iter().find(|a| a["action"] == action && a["outcome"] == outcome).unwrap();
        let shown = format!(r#"<b>{action}</b> <span class="badge good">{outcome}</span>"#);
        assert!(section_a.contains(&shown), "{shown} missing from:\n{section_a}");
        assert!(section_a.contains(&text(a["detail"].as_str().unwrap())), "{a}:\n{section_a}");
    }
    assert!(section_a.contains("from revision 2 to 1"), "{section_a}");
}

/// No `src` at all, links only within the guardian, no style that loads anything.
fn nothing_external(dom: &str) {
    let attribute = Regex::new(r#"\s(src|href|srcset|action|xlink:href|data)="([^"]*)""#).unwrap();
    let tags = Regex::new(r"<[a-zA-Z][^>]*>").unwrap();
    let mut links = 0;
    for tag in tags.find_iter(dom) {
        for a in attribute.captures_iter(tag.as_str()) {
            let (name, value) = (&a[1], &a[2]);
            assert_eq!(name, "href", "{tag:?}: no {name} on the page", tag = tag.as_str());
            assert!(value.starts_with('#') || value.starts_with("/api/"), "{} points outside", tag.as_str());
            links += 1;
        }
    }
    assert!(links >= 6, "the section links and the API link");
    for never in ["<link", "<script", "<iframe", "<object", "<embed", "url(", "@import", "://fonts", "@font-face"] {
        assert!(!dom.contains(never), "{never:?} in the page");
    }
}

/// Headless Chromium will not make a window narrower than 500 px, so a
/// phone is a 390 px iframe: it lays the page out at that width, media
/// queries included. The page as served, with a probe script appended that
/// reports the document's width and the elements wider than the viewport.
async fn fits_a_phone(chromium: &Chromium, html: &str) {
    let probe = "<script>const w=document.documentElement.clientWidth;parent.document.body.dataset.fit=\
        document.documentElement.scrollWidth+'/'+w+' '+[...document.querySelectorAll('body *')]\
        .filter(e=>e.getBoundingClientRect().right>w+0.5).map(e=>e.tagName+'.'+(e.className.baseVal\
        ??e.className)).slice(0,8).join(',');</script>";
    let (_dir, phone) = phone_frame(&html.replace("</body>", &format!("{probe}</body>")));
    let dom = chromium.dump_dom(&phone, DESKTOP).await;
    let fit = Regex::new(r#"data-fit="(\d+)/(\d+) ?([^"]*)""#).unwrap();
    let m = fit.captures(&dom).unwrap_or_else(|| panic!("the probe ran: {dom}"));
    let (scroll, client): (u32, u32) = (m[1].parse().unwrap(), m[2].parse().unwrap());
    assert!(client > 300 && client <= PHONE.0, "the layout viewport is a phone's: {client}");
    assert!(scroll <= client, "horizontal scroll at {} px: {scroll} > {client}, too wide: {}", PHONE.0, &m[3]);
}

/// A page holding `html` in one phone-sized iframe at its top left corner;
/// the file's URL, and the directory to keep meanwhile. The frame's document
/// is the parent's origin (`srcdoc`), so it renders in the same process and
/// the parent's load waits for it: a cross-site frame may be captured blank.
fn phone_frame(html: &str) -> (tempfile::TempDir, String) {
    let (w, h) = PHONE;
    let srcdoc = html.replace('&', "&amp;").replace('"', "&quot;");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("phone.html");
    let page = format!(
        "<!doctype html><html><body style=\"margin:0\"><iframe style=\"border:0;display:block;width:{w}px;\
         height:{h}px\" srcdoc=\"{srcdoc}\"></iframe></body></html>"
    );
    std::fs::write(&file, page).unwrap();
    let url = format!("file://{}", file.display());
    (dir, url)
}

/// A phone (the page as served in a 390 px frame, the window cropped to it) and a desktop (`url` itself),
/// next to the page as served.
async fn screenshots(chromium: &Chromium, html: &str, url: &str) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("status-page");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("page.html"), html).unwrap();
    let (_frame_dir, phone) = phone_frame(html);
    for (name, page, size) in [("phone.png", phone.as_str(), PHONE), ("desktop.png", url, DESKTOP)] {
        let path = dir.join(name);
        let _ = std::fs::remove_file(&path);
        chromium.screenshot(page, size, &path).await;
        let png = std::fs::read(&path).unwrap();
        assert_eq!(png_size(&png), Some(size), "{}", path.display());
        // A blank capture compresses to a few KB; the page is text and colour all over.
        assert!(png.len() > 30_000, "{} looks blank: {} bytes", path.display(), png.len());
        eprintln!("screenshot: {}", path.display());
    }
    if std::env::var("UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/img/status-page.png");
        std::fs::create_dir_all(docs.parent().unwrap()).unwrap();
        std::fs::copy(dir.join("phone.png"), &docs).unwrap();
        eprintln!("updated {}", docs.display());
    }
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    let be = |at: usize| Some(u32::from_be_bytes(png.get(at..at + 4)?.try_into().ok()?));
    (png.starts_with(b"\x89PNG\r\n\x1a\n") && png.get(12..16) == Some(b"IHDR")).then_some((be(16)?, be(20)?))
}

/// One `<section id=ID>` of the DOM.
fn section<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom.find(&format!("<section id=\"{id}\">")).unwrap_or_else(|| panic!("no section {id}:\n{dom}"));
    let len = dom[start..].find("</section>").unwrap();
    &dom[start..start + len]
}

/// The `<article>` card of `name` within a section.
fn card<'a>(section: &'a str, name: &str) -> &'a str {
    let at = section.find(&format!("<span class=\"name\">{}</span>", text(name)));
    let at = at.unwrap_or_else(|| panic!("no card for {name}:\n{section}"));
    let start = section[..at].rfind("<article").unwrap();
    let len = section[start..].find("</article>").unwrap();
    &section[start..start + len]
}

/// Text as Chromium serializes a text node.
fn text(raw: &str) -> String {
    raw.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Durations and numbers blurred: a message says "since 12s" at one moment and "since 13s" the next.
fn blur(text: &str) -> String {
    let number = Regex::new(r"\d+(\.\d+)?").unwrap();
    let durations = Regex::new(r"#(ms|s|m|h|d)( #(ms|s|m|h|d))*\b").unwrap();
    durations.replace_all(&number.replace_all(text, "#"), "<t>").into_owned()
}

/// Debian's `chromium`, headless, each run in a fresh profile.
struct Chromium;

impl Chromium {
    /// `None` (with a note) when it is not installed, outside CI; under `CI=true` that fails.
    fn find() -> Option<Chromium> {
        match Command::new("chromium").arg("--version").output() {
            Ok(out) if out.status.success() => Some(Chromium),
            Ok(out) => panic!("chromium --version failed: {}", String::from_utf8_lossy(&out.stderr)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "chromium is not on PATH, and CI=true requires it"
                );
                eprintln!("chromium not on PATH (Debian package chromium): skipped");
                None
            }
            Err(e) => panic!("cannot run chromium: {e}"),
        }
    }

    async fn dump_dom(&self, url: &str, (w, h): (u32, u32)) -> String {
        let out = self.run(vec!["--dump-dom".into(), format!("--window-size={w},{h}"), url.into()]).await;
        assert!(out.contains("</html>"), "chromium printed no DOM for {url}:\n{out}");
        out
    }

    async fn screenshot(&self, url: &str, (w, h): (u32, u32), path: &Path) {
        let args = vec![
            format!("--screenshot={}", path.display()),
            format!("--window-size={w},{h}"),
            "--hide-scrollbars".into(),
            url.into(),
        ];
        self.run(args).await;
    }

    /// Runs it to the end (at most [`CHROMIUM_WITHIN`]) and returns its standard output.
    async fn run(&self, args: Vec<String>) -> String {
        tokio::task::spawn_blocking(move || run_chromium(&args)).await.unwrap()
    }
}

fn run_chromium(args: &[String]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let (stdout, stderr) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let profile: PathBuf = dir.path().join("profile");
    let mut child = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let poll = Duration::from_millis(50);
    for _ in 0..CHROMIUM_WITHIN.as_millis() / poll.as_millis() {
        if let Some(exit) = child.try_wait().unwrap() {
            let err = std::fs::read_to_string(&stderr).unwrap_or_default();
            assert!(exit.success(), "chromium {args:?} exited with {exit}:\n{err}");
            return std::fs::read_to_string(&stdout).unwrap();
        }
        std::thread::sleep(poll);
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("chromium {args:?} did not finish within {CHROMIUM_WITHIN:?}");
}
