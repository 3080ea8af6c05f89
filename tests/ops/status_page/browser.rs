//! Headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
//! commands in on fd 3, replies and events out on fd 4, each a JSON text ended by a NUL): load a
//! page, wait for what its script shows, query the DOM, size the viewport, take screenshots.
//! No port to pick, no WebSocket. Needs `chromium` (scripts/install-test-deps.sh); without it
//! the test fails, it never skips.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use command_fds::{CommandFdExt, FdMapping};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;

/// A command that takes longer than this fails the test (with Chromium's stderr).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Browser {
    child: Child,
    to_browser: pipe::Sender,
    from_browser: BufReader<pipe::Receiver>,
    next_id: u64,
    /// The page's session (commands without one go to the browser).
    session: Option<String>,
    stderr: PathBuf,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium with a fresh profile and opens a blank page.
    pub async fn launch() -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let stderr = profile.path().join("stderr");
        let (commands_in, commands_out) = std::io::pipe().unwrap();
        let (replies_in, replies_out) = std::io::pipe().unwrap();
        let mut command = Command::new(browser());
        // Root in a container has no sandbox to run in; the page is our own, on loopback.
        command
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--remote-debugging-pipe",
            ])
            // Nothing may leave the machine: no Google services, no updates, no QUIC.
            .args([
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ])
            .arg(format!(
                "--user-data-dir={}",
                profile.path().join("profile").display()
            ))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&stderr).unwrap())
            .fd_mappings(vec![
                FdMapping {
                    parent_fd: OwnedFd::from(commands_in),
                    child_fd: 3,
                },
                FdMapping {
                    parent_fd: OwnedFd::from(replies_out),
                    child_fd: 4,
                },
            ])
            .unwrap();
        let child = command.spawn().expect("cannot start chromium");
        // The child holds its ends now; ours must close for end of file to reach either side.
        drop(command);
        let mut browser = Browser {
            child,
            to_browser: pipe::Sender::from_owned_fd(OwnedFd::from(commands_out)).unwrap(),
            from_browser: BufReader::new(
                pipe::Receiver::from_owned_fd(OwnedFd::from(replies_in)).unwrap(),
            ),
            next_id: 0,
            session: None,
            stderr,
            _profile: profile,
        };
        let target = browser
            .call("Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let target_id = target["targetId"].as_str().unwrap().to_owned();
        let attached = browser
            .call(
                "Target.attachToTarget",
                json!({"targetId": target_id, "flatten": true}),
            )
            .await;
        browser.session = Some(attached["sessionId"].as_str().unwrap().to_owned());
        // Scripts for new documents (`before_scripts`) need the page domain.
        browser.call("Page.enable", json!({})).await;
        browser
    }

    /// Sends one command and returns its result, passing over events and other replies.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = &self.session {
            message["sessionId"] = json!(session);
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        let exchange = async {
            self.to_browser.write_all(&bytes).await.unwrap();
            loop {
                let mut reply = Vec::new();
                let read = self.from_browser.read_until(0, &mut reply).await.unwrap();
                assert!(read > 0, "chromium closed the pipe");
                reply.pop_if(|b| *b == 0);
                let reply: Value = serde_json::from_slice(&reply).unwrap();
                if reply["id"] == json!(id) {
                    return reply;
                }
            }
        };
        let Ok(reply) = tokio::time::timeout(CALL_TIMEOUT, exchange).await else {
            panic!(
                "chromium did not answer {method} in time\n{}",
                self.stderr()
            );
        };
        assert!(
            reply.get("error").is_none(),
            "{method} failed: {}",
            reply["error"]
        );
        reply["result"].clone()
    }

    /// Runs `source` in every page loaded from now on, before the page's own scripts.
    pub async fn before_scripts(&mut self, source: &str) {
        self.call(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": source}),
        )
        .await;
    }

    /// Loads `url` and waits until it has loaded.
    pub async fn goto(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url})).await;
        let loaded = format!(
            "location.href === {} && document.readyState === 'complete'",
            json!(url)
        );
        self.wait_for("the page loaded", &loaded).await;
    }

    /// The value of a JavaScript expression (awaited when it is a promise).
    pub async fn eval(&mut self, expression: &str) -> Value {
        match self.try_eval(expression).await {
            Ok(value) => value,
            Err(exception) => panic!("{expression} threw: {exception}"),
        }
    }

    async fn try_eval(&mut self, expression: &str) -> Result<Value, Value> {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await;
        match result.get("exceptionDetails") {
            Some(exception) => Err(exception.clone()),
            None => Ok(result["result"]["value"].clone()),
        }
    }

    /// Waits until `expression` is `true` in the page (one that throws is not, yet): what the
    /// page shows, observed, never a sleep standing in for it. Fails after 20 s with `what`.
    pub async fn wait_for(&mut self, what: &str, expression: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let value = self.try_eval(expression).await;
            if value == Ok(json!(true)) {
                return;
            }
            if Instant::now() > deadline {
                let main = "(document.getElementById('status') ?? document.body)?.outerHTML.slice(0, 20000)";
                let dom = self.try_eval(main).await;
                panic!("the page never showed {what} ({expression}): {value:?}\n{dom:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The viewport of a window `width` wide (`mobile`: as a phone lays a page out).
    pub async fn viewport(&mut self, width: u32, height: u32, mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        )
        .await;
    }

    /// The viewport as a PNG, written to `path`.
    pub async fn screenshot(&mut self, path: &Path) -> Vec<u8> {
        let shot = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, &png).unwrap();
        png
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn browser() -> PathBuf {
    let installed = Path::new("/usr/bin/chromium");
    if installed.is_file() {
        return installed.to_owned();
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("chromium"))
                .find(|candidate| candidate.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "headless Chromium is needed (no /usr/bin/chromium, no chromium on PATH): \
                 run scripts/install-test-deps.sh"
            )
        })
}
