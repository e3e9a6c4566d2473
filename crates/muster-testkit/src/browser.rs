//! Headless Chromium for page tests, driven over WebDriver (W3C, the
//! protocol `chromedriver` speaks: plain HTTP and JSON). Debian's `chromium`
//! and `chromium-driver` packages provide both programs.

use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};

/// The key under which WebDriver names an element (W3C WebDriver §12.2).
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Driver {
    child: Child,
    base: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Driver {
    /// Starts `chromedriver`, or `None` (after saying so) where there is no
    /// Chromium — except under CI, where a missing browser fails the test.
    pub async fn start(test_name: &str) -> Option<Self> {
        let found = std::path::Path::new("/usr/bin/chromedriver").exists()
            && std::path::Path::new("/usr/bin/chromium").exists();
        if !found {
            assert!(
                std::env::var_os("CI").is_none(),
                "chromium and chromedriver are not installed: the page suite must run in CI"
            );
            eprintln!(
                "SKIPPED {test_name}: install Debian's chromium and chromium-driver to run it"
            );
            return None;
        }
        let port = free_port();
        let child = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let d = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        for _ in 0..100 {
            if let Ok(r) = d.http.get(format!("{}/status", d.base)).send().await
                && r.status().is_success()
            {
                return Some(d);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("chromedriver did not come up");
    }

    /// A new browser: its own profile, so its own cookies.
    pub async fn browser(&self) -> Browser {
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1100,1000"]
            }
        }}});
        let r: Value = self
            .http
            .post(format!("{}/session", self.base))
            .json(&caps)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session answer");
        let id = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_owned();
        Browser {
            url: format!("{}/session/{id}", self.base),
            http: self.http.clone(),
        }
    }
}

pub struct Browser {
    url: String,
    http: reqwest::Client,
}

impl Browser {
    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req
            .send()
            .await
            .expect("webdriver")
            .json()
            .await
            .expect("json");
        if v["value"].get("error").is_some() {
            panic!("webdriver {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    pub async fn current_url(&self) -> String {
        self.cmd(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub async fn source(&self) -> String {
        self.cmd(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The page's source once it contains `needle` (a click that submits a
    /// form may return before the next page has loaded); fails after 10 s.
    pub async fn wait_for(&self, needle: &str) -> String {
        for _ in 0..200 {
            let html = self.source().await;
            if html.contains(needle) {
                return html;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the page never showed {needle:?}: {}", self.source().await);
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        match v[ELEMENT].as_str() {
            Some(e) => e.to_owned(),
            None => panic!("no element {css} ({v}) on {}", self.current_url().await),
        }
    }

    /// Types into the field `css` (after clearing it).
    pub async fn fill(&self, css: &str, text: &str) {
        let e = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/clear"),
            Some(json!({})),
        )
        .await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    pub async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// The visible text of `css`.
    pub async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.cmd(reqwest::Method::GET, &format!("/element/{e}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Sends keys to the focused element (WebDriver key codes: "\u{E004}" is Tab).
    pub async fn keys(&self, text: &str) {
        let actions = json!({"actions": [{"type": "key", "id": "kb", "actions":
            text.chars().flat_map(|c| [json!({"type": "keyDown", "value": c.to_string()}), json!({"type": "keyUp", "value": c.to_string()})]).collect::<Vec<_>>()
        }]});
        self.cmd(reqwest::Method::POST, "/actions", Some(actions))
            .await;
    }

    /// The id of the focused element.
    pub async fn focused_id(&self) -> String {
        let v = self
            .cmd(reqwest::Method::GET, "/element/active", None)
            .await;
        let e = v[ELEMENT].as_str().unwrap_or_default().to_owned();
        self.cmd(
            reqwest::Method::GET,
            &format!("/element/{e}/attribute/id"),
            None,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// A PNG of the page, saved to `path`.
    pub async fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine;
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("png");
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        std::fs::write(path, png).expect("write screenshot");
    }

    /// Attaches a virtual authenticator to this browser (the WebDriver
    /// extension over Chromium's DevTools WebAuthn domain): a platform
    /// authenticator that keeps discoverable credentials, verifies the user
    /// and always consents. Returns its id.
    pub async fn add_virtual_authenticator(&self) -> String {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/webauthn/authenticator",
                Some(json!({
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": true,
                    "hasUserVerification": true,
                    "isUserConsenting": true,
                    "isUserVerified": true
                })),
            )
            .await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// The credentials a virtual authenticator holds.
    pub async fn virtual_credentials(&self, authenticator: &str) -> Vec<Value> {
        self.cmd(
            reqwest::Method::GET,
            &format!("/webauthn/authenticator/{authenticator}/credentials"),
            None,
        )
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
    }

    pub async fn quit(self) {
        let _ = self.http.delete(&self.url).send().await;
    }
}
