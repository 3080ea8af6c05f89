//! `/v2/events`: framing, heartbeats, filtering, redirects, and what closes a stream.

use super::*;
use crate::sim::simulator::{SimAuth, TaskSpec};

#[tokio::test]
async fn stream_head_frames_and_heartbeat_are_jettys() {
    let sim = start(1, SimAuth::None).await;
    // `Raw::stream` asserts the exact header block: no Content-Length, no chunking.
    let mut raw = Raw::stream(&sim.urls()[0], "?event_type=event_stream_attached").await;
    let (name, attached) = raw.next_event().await;
    assert_eq!(name, "event_stream_attached");
    assert_eq!(attached["remoteAddress"], "127.0.0.1");
    assert!(attached["timestamp"].as_str().unwrap().ends_with('Z'));
    // Nothing else matches the filter: the next bytes are a heartbeat, CR then LF.
    assert_eq!(raw.take(1).await, b"\r");
    assert_eq!(raw.take(1).await, b"\n");
    assert_eq!(sim.stats().event_connections, 1);
    sim.shutdown().await;
}

#[tokio::test]
async fn events_follow_changes_and_the_filter() {
    let sim = start(1, SimAuth::None).await;
    let url = &sim.urls()[0];
    let query = "?plan-format=light&event_type=status_update_event&event_type=app_terminated_event";
    let mut raw = Raw::stream(url, query).await;
    sim.put_app(web_app("/web"));
    let task = sim
        .start_task("/web", TaskSpec::running("10.0.0.1", vec![31000]))
        .unwrap();
    let (name, update) = raw.next_event().await;
    assert_eq!(name, "status_update_event");
    assert_eq!(update["taskId"], task.as_str());
    assert_eq!(update["taskStatus"], "TASK_RUNNING");
    assert_eq!(update["ports"], serde_json::json!([31000]));
    // Event received ⇒ a refetch sees the change.
    let apps: Value = client()
        .get(format!("{url}/v2/apps?embed=apps.tasks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(apps["apps"][0]["tasks"][0]["id"], task.as_str());
    assert!(sim.kill_task(&task));
    let (_, killed) = raw.next_event().await;
    assert_eq!(killed["taskStatus"], "TASK_KILLED");
    assert!(sim.remove_app("/web"));
    let (name, terminated) = raw.next_event().await;
    assert_eq!(name, "app_terminated_event");
    assert_eq!(terminated["appId"], "/web");
    sim.shutdown().await;
}

#[tokio::test]
async fn unfiltered_stream_gets_every_event_and_a_comma_list_gets_none() {
    let sim = start(1, SimAuth::None).await;
    let url = &sim.urls()[0];
    let mut all = Raw::stream(url, "").await;
    let mut comma = Raw::stream(url, "?event_type=api_post_event,event_stream_attached").await;
    let before = comma.drain();
    sim.put_app(web_app("/web"));
    sim.emit("custom_event", serde_json::json!({"n": 1}));
    let mut names = Vec::new();
    while names.last().map(String::as_str) != Some("custom_event") {
        names.push(all.next_event().await.0);
    }
    // Both attaches (ours and the comma stream's), then the put's two events.
    assert_eq!(
        names,
        [
            "event_stream_attached",
            "event_stream_attached",
            "api_post_event",
            "deployment_success",
            "custom_event"
        ]
    );
    // Events always go out before heartbeats; the second heartbeat after the changes proves
    // the comma stream let every one of them pass by.
    assert!(!String::from_utf8_lossy(&before).contains("event:"));
    assert_eq!(comma.take(4).await, b"\r\n\r\n");
    sim.shutdown().await;
}

#[tokio::test]
async fn accept_must_be_exactly_text_event_stream() {
    let sim = start(1, SimAuth::None).await;
    let url = &sim.urls()[0];
    for accept in [
        "Accept: text/event-stream, */*\r\n",
        "Accept: text/event-stream;q=1\r\n",
        "",
    ] {
        let head = format!("GET /v2/events HTTP/1.1\r\nHost: x\r\n{accept}\r\n");
        let mut raw = Raw::request(url, &head).await;
        let (status, head) = raw.status().await;
        assert_eq!(status, 405, "{accept}");
        assert!(header(&head, "content-type")
            .unwrap()
            .starts_with("text/html"));
    }
    // Two Accept lines, one of them exact: Jetty serves the stream.
    let two = events_request("", "Accept: application/json\r\n");
    let (status, _) = Raw::request(url, &two).await.status().await;
    assert_eq!(status, 200);
    assert_eq!(sim.stats().wrong_accept, 3);
    sim.shutdown().await;
}

#[tokio::test]
async fn standby_redirects_and_leadership_moves_close_streams() {
    let sim = start(2, SimAuth::None).await;
    let urls = sim.urls();
    let query = "?event_type=a%20b&plan-format=light";
    let mut raw = Raw::request(&urls[1], &events_request(query, "")).await;
    let (status, head) = raw.status().await;
    assert_eq!(status, 302);
    assert_eq!(
        header(&head, "location"),
        Some(format!("{}/v2/events{query}", urls[0]).as_str())
    );
    assert_eq!(sim.stats().redirects, 1);

    let mut open = Raw::stream(&urls[0], "").await;
    sim.set_leader(1);
    assert_eq!(sim.leader(), 1);
    open.read_to_close().await;
    let _ = Raw::stream(&urls[1], "").await;
    let (status, head) = Raw::request(&urls[0], &events_request("", ""))
        .await
        .status()
        .await;
    assert_eq!(status, 302);
    assert_eq!(
        header(&head, "location"),
        Some(format!("{}/v2/events", urls[1]).as_str())
    );
    let leader: Value = client()
        .get(format!("{}/v2/leader", urls[0]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(leader["leader"], authority(&urls[1]));
    sim.shutdown().await;
}

#[tokio::test]
async fn a_down_node_refuses_then_serves_on_the_same_port() {
    let sim = start(2, SimAuth::None).await;
    let url = sim.urls()[0].clone();
    let mut open = Raw::stream(&url, "").await;
    sim.set_down(0, true);
    open.read_to_close().await;
    assert!(TcpStream::connect(authority(&url)).await.is_err());
    sim.set_down(0, false);
    assert_eq!(sim.urls()[0], url);
    let pong = client().get(format!("{url}/ping")).send().await.unwrap();
    assert_eq!(pong.text().await.unwrap(), "pong");
    let _ = Raw::stream(&url, "").await;
    sim.shutdown().await;
}

#[tokio::test]
async fn down_and_straight_up_again_still_closes_open_streams() {
    let sim = start(1, SimAuth::None).await;
    let url = sim.urls()[0].clone();
    let mut open = Raw::stream(&url, "").await;
    // The old stream may still be established while the port is bound again.
    sim.set_down(0, true);
    sim.set_down(0, false);
    open.read_to_close().await;
    let _ = Raw::stream(&url, "").await;
    sim.shutdown().await;
}

#[tokio::test]
async fn an_election_answers_503_and_closes_streams() {
    let sim = start(1, SimAuth::None).await;
    let url = &sim.urls()[0];
    let mut open = Raw::stream(url, "").await;
    sim.set_election(true);
    open.read_to_close().await;
    let (status, _) = Raw::request(url, &events_request("", ""))
        .await
        .status()
        .await;
    assert_eq!(status, 503);
    let apps = client().get(format!("{url}/v2/apps")).send().await.unwrap();
    assert_eq!(apps.status(), 503);
    let body: Value = apps.json().await.unwrap();
    assert!(body["message"].is_string());
    sim.set_election(false);
    let _ = Raw::stream(url, "").await;
    sim.shutdown().await;
}

#[tokio::test]
async fn a_stalled_stream_stays_open_silently_and_resumes() {
    let sim = start(1, SimAuth::None).await;
    let mut raw = Raw::stream(&sim.urls()[0], "?event_type=custom_event").await;
    sim.stop_stream_heartbeats(true);
    raw.drain();
    sim.emit("custom_event", serde_json::json!({}));
    // A negative check needs a little time: three heartbeat periods of silence.
    let silent = tokio::time::timeout(HEARTBEAT * 3, raw.stream.read_buf(&mut raw.buf)).await;
    assert!(silent.is_err(), "a stalled stream wrote {:?}", raw.buf);
    sim.stop_stream_heartbeats(false);
    assert_eq!(raw.next_event().await.0, "custom_event");
    sim.shutdown().await;
}

#[tokio::test]
async fn a_stream_more_than_1024_events_behind_is_closed() {
    let sim = start(1, SimAuth::None).await;
    let mut raw = Raw::stream(&sim.urls()[0], "?event_type=custom_event").await;
    sim.stop_stream_heartbeats(true);
    for n in 0..1100 {
        sim.emit("custom_event", serde_json::json!({ "n": n }));
    }
    sim.stop_stream_heartbeats(false);
    let rest = raw.read_to_close().await;
    assert!(!String::from_utf8_lossy(&rest).contains("event:"));
    sim.shutdown().await;
}

#[tokio::test]
async fn streams_need_credentials_first() {
    let basic = SimAuth::Basic {
        user: "u".into(),
        password: "p".into(),
    };
    let sim = start(2, basic).await;
    // Auth comes before the standby's redirect.
    let (status, head) = Raw::request(&sim.urls()[1], &events_request("", ""))
        .await
        .status()
        .await;
    assert_eq!(status, 401);
    assert_eq!(
        header(&head, "www-authenticate"),
        Some("Basic realm=\"Mesosphere\"")
    );
    let auth = "Authorization: Basic dTpw\r\n";
    let mut raw = Raw::request(&sim.urls()[0], &events_request("", auth)).await;
    assert_eq!(
        String::from_utf8_lossy(&raw.until(b"\r\n\r\n").await),
        STREAM_HEAD
    );
    sim.shutdown().await;
}
