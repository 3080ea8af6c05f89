//! The app list: an empty list held until a later read confirms it (E8), and a big list
//! processed while requests keep being answered (E6).

use super::*;

/// E8: Marathon answering an empty app list right after a list with apps is not believed at
/// once: the routes stay, one warning, `switchyard_snapshots_held_total`, `/stats` shows it. A
/// read within the confirmation interval does not apply it either; the confirming read the
/// balancer schedules itself (at least the interval later) does, so an operator can still
/// empty the table. A good list in between cancels the hold.
#[tokio::test]
async fn e8_an_empty_app_list_is_held_until_a_later_read_confirms_it() {
    let a = Backend::start("a").await;
    let sim = simulator(1).await;
    sim.put_app(web_app());
    sim.start_task("/web", TaskSpec::running("127.0.0.1", vec![a.port()]))
        .unwrap();
    let confirm = Duration::from_secs(2);
    let mut source = source(sim.urls(), Credentials::None);
    source.empty_list_confirm = confirm;
    let handle = start(source).await;
    guarded("the first table", handle.wait_generation(1)).await;
    assert_eq!(web_ports(&handle), vec![a.port()]);
    let url = format!("http://{}/", handle.http_addr.unwrap());
    let c = client();
    let generation = handle.generation();

    // A good list in between cancels a hold.
    sim.set_apps_fault(AppsFault::Empty);
    let refreshes = handle.refreshes();
    handle.reload();
    guarded("the empty read", handle.wait_refreshes(refreshes + 1)).await;
    let held_at = Instant::now();
    assert_eq!(
        handle.generation(),
        generation,
        "one empty list built a table"
    );
    assert_eq!(get(&c, &url, HOST).await.1, "a", "the routes stay");
    let (_, metrics) = admin(&handle, "/metrics").await;
    assert_eq!(metric(&metrics, "switchyard_snapshots_held_total"), 1.0);
    let (_, stats) = admin(&handle, "/stats").await;
    let stats: Value = serde_json::from_str(&stats).unwrap();
    assert!(stats["held_empty_list_since_unix_ms"].is_u64(), "{stats}");

    // An early second read (well within the interval) does not confirm it.
    let refreshes = handle.refreshes();
    handle.reload();
    guarded("an early read", handle.wait_refreshes(refreshes + 1)).await;
    if held_at.elapsed() < confirm {
        assert_eq!(handle.generation(), generation, "confirmed too early");
        assert_eq!(get(&c, &url, HOST).await.1, "a");
    }

    // Marathon recovers: the hold is dropped, nothing was built.
    sim.set_apps_fault(AppsFault::None);
    let refreshes = handle.refreshes();
    handle.reload();
    guarded("a good read", handle.wait_refreshes(refreshes + 1)).await;
    let (_, stats) = admin(&handle, "/stats").await;
    let stats: Value = serde_json::from_str(&stats).unwrap();
    assert!(stats["held_empty_list_since_unix_ms"].is_null(), "{stats}");
    assert_eq!(get(&c, &url, HOST).await.1, "a");

    // Empty for real: held once more, then the balancer's own confirming read applies it.
    sim.set_apps_fault(AppsFault::Empty);
    let refreshes = handle.refreshes();
    handle.reload();
    guarded("the empty read", handle.wait_refreshes(refreshes + 1)).await;
    let held_at = Instant::now();
    let before = handle.generation();
    let (_, metrics) = admin(&handle, "/metrics").await;
    assert_eq!(metric(&metrics, "switchyard_snapshots_held_total"), 2.0);
    guarded("the confirming read", handle.wait_generation(before + 1)).await;
    assert!(
        held_at.elapsed() + Duration::from_millis(50) >= confirm,
        "applied after {:?}, before the confirmation interval",
        held_at.elapsed()
    );
    assert!(
        web_ports(&handle).is_empty(),
        "the operator emptied it: no routes"
    );
    let (status, _, _) = get(&c, &url, HOST).await;
    assert_eq!(status, 503);
    let (_, metrics) = admin(&handle, "/metrics").await;
    assert_eq!(
        metric(&metrics, "switchyard_snapshots_held_total"),
        2.0,
        "counted once per hold"
    );
    handle.shutdown().await;
    sim.shutdown().await;
}

/// A stand-in Marathon for E6: `/v2/apps` answers whatever document it holds now, and counts
/// the answers.
struct DocumentServer {
    url: String,
    document: Arc<Mutex<Bytes>>,
    answers: Arc<AtomicUsize>,
}

impl DocumentServer {
    async fn start(document: Bytes) -> DocumentServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let document = Arc::new(Mutex::new(document));
        let answers = Arc::new(AtomicUsize::new(0));
        let (d, n) = (document.clone(), answers.clone());
        tokio::spawn(async move {
            while let Ok((s, _)) = listener.accept().await {
                let (d, n) = (d.clone(), n.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_req| {
                        let body = d.lock().unwrap().clone();
                        n.fetch_add(1, Ordering::SeqCst);
                        async move {
                            Ok::<_, Infallible>(
                                hyper::Response::builder()
                                    .header("content-type", "application/json")
                                    .body(Full::new(body))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(s), service)
                        .await;
                });
            }
        });
        DocumentServer {
            url,
            document,
            answers,
        }
    }
}

/// `{"apps": [...]}` with /web on `web_port` and `n` more apps of three tasks each, written as
/// Marathon writes them.
fn big_document(web_port: u16, n: usize) -> Bytes {
    let mut apps = vec![json!({
        "id": "/web",
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": HOST},
        "portDefinitions": [{"port": 10990}],
        "tasks": [{"id": "web.1", "appId": "/web", "host": "127.0.0.1", "state": "TASK_RUNNING", "ports": [web_port]}],
    })];
    for i in 0..n {
        let id = format!("/big/app-{i:05}");
        apps.push(json!({
            "id": id,
            "instances": 3,
            "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": format!("app-{i}.big.example.com")},
            "portDefinitions": [{"port": 11000 + i, "protocol": "tcp"}],
            "tasks": (0..3).map(|t| json!({
                "id": format!("big_app-{i:05}.instance-{t}._app.1"),
                "appId": id,
                "host": format!("127.0.{}.{}", t, i % 250 + 1),
                "state": "TASK_RUNNING",
                "ports": [20000 + i % 40000],
                "startedAt": "2026-11-26T10:00:00.000Z",
                "version": "2026-11-26T09:59:00.000Z",
            })).collect::<Vec<_>>(),
        }));
    }
    Bytes::from(serde_json::to_vec(&json!({ "apps": apps })).unwrap())
}

/// E6: while a big app list is parsed and built, the proxy and the admin port keep answering.
/// The window is exact: from the moment the read is counted (the whole body received; parse
/// and build follow with no wait in between) until the new table is served. On this
/// single-threaded runtime, parsing or building on the async worker would leave no room for
/// any request inside that window.
#[tokio::test]
async fn e6_a_big_app_list_is_processed_while_requests_keep_being_answered() {
    let web = Backend::start("web").await;
    let server = DocumentServer::start(big_document(web.port(), 0)).await;
    let source = MarathonSource {
        events: false,
        ..source(vec![server.url.clone()], Credentials::None)
    };
    let handle = start(source).await;
    guarded("the first table", handle.wait_generation(1)).await;
    let url = format!("http://{}/", handle.http_addr.unwrap());
    let c = client();
    assert_eq!(get(&c, &url, HOST).await.1, "web");

    let big = big_document(web.port(), 3000);
    eprintln!("big document: {} bytes", big.len());
    *server.document.lock().unwrap() = big;
    handle.reload();
    let mut answered_inside = 0;
    let mut scrapes = 0;
    while handle.generation() < 2 {
        let (status, metrics) = admin(&handle, "/metrics").await;
        assert_eq!(status, 200);
        scrapes += 1;
        let received = metric(
            &metrics,
            "switchyard_marathon_refetches_total{kind=\"full\"}",
        ) >= 2.0;
        let old_table = metric(&metrics, "switchyard_table_generation") < 2.0;
        if received && old_table {
            // Inside the window: parse or build is running. Both ports answer.
            let (status, backend, _) = get(&c, &url, HOST).await;
            assert_eq!((status, backend.as_str()), (200, "web"));
            let (status, _) = admin(&handle, "/healthz").await;
            assert_eq!(status, 200);
            if handle.generation() < 2 {
                answered_inside += 1;
            }
        }
        assert!(scrapes < 1_000_000);
    }
    eprintln!("{answered_inside} proxied requests answered while the list was processed");
    assert!(
        answered_inside > 0,
        "nothing was answered while the list was processed"
    );
    assert_eq!(server.answers.load(Ordering::SeqCst), 2);
    let table = handle.table.load();
    assert!(table.route(b"app-2999.big.example.com", "/").is_some());
    handle.shutdown().await;
}
