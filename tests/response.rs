//! The response PUT against a recording loopback server: exact headers and body, retries
//! on 5xx, none on 4xx, and a hang bounded by the deadline.

mod support;

use ecr_policy_provider::response::{SendError, Sender};
use reqwest::Url;
use std::time::Duration;
use support::{Answer, Recorder};
use tokio::time::Instant;

fn sender() -> Sender {
    Sender::new().with_base_pause(Duration::from_millis(20))
}

const BODY: &[u8] = br#"{"Status":"SUCCESS","PhysicalResourceId":"registry-policy:us-east-1:123456789012","StackId":"s","RequestId":"r","LogicalResourceId":"l","Data":{"Region":"us-east-1"}}"#;

#[tokio::test]
async fn two_503s_then_success_sends_the_same_exact_bytes_three_times() {
    let recorder = Recorder::start(vec![Answer::Status(503), Answer::Status(503)]).await;
    let url = Url::parse(&recorder.url).expect("url");
    let attempts = sender()
        .send(
            &url,
            BODY.to_vec(),
            Instant::now() + Duration::from_secs(10),
        )
        .await
        .expect("delivered on the third attempt");
    assert_eq!(attempts, 3);
    let requests = recorder.requests();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        assert!(request.request_line.starts_with("PUT /cloudformation-responses/stack%7CLogical%7Crequest?X-Amz-Signature=secret-signature"), "{}", request.request_line);
        assert_eq!(request.header("content-type"), [""], "empty Content-Type");
        assert_eq!(request.header("content-length"), [BODY.len().to_string()]);
        assert!(request.header("transfer-encoding").is_empty());
        assert_eq!(request.body, BODY);
    }
}

#[tokio::test]
async fn a_4xx_is_not_retried() {
    let recorder = Recorder::start(vec![Answer::Status(403)]).await;
    let url = Url::parse(&recorder.url).expect("url");
    let err = sender()
        .send(
            &url,
            BODY.to_vec(),
            Instant::now() + Duration::from_secs(10),
        )
        .await
        .expect_err("403");
    assert!(matches!(err, SendError::Refused(403)), "{err}");
    assert_eq!(recorder.requests().len(), 1);
}

#[tokio::test]
async fn a_server_that_never_answers_is_given_up_at_the_deadline() {
    let recorder = Recorder::start(vec![Answer::Hang, Answer::Hang, Answer::Hang]).await;
    let url = Url::parse(&recorder.url).expect("url");
    let started = Instant::now();
    let err = sender()
        .send(&url, BODY.to_vec(), started + Duration::from_millis(800))
        .await
        .expect_err("hang");
    assert!(matches!(err, SendError::OutOfTime { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_refused_connection_is_retried_until_the_deadline() {
    // A port with nothing listening: bind, learn the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let url = Url::parse(&format!("http://127.0.0.1:{port}/b/k")).expect("url");
    let err = sender()
        .send(
            &url,
            BODY.to_vec(),
            Instant::now() + Duration::from_millis(500),
        )
        .await
        .expect_err("nothing listens");
    match err {
        SendError::OutOfTime { attempts, .. } => assert!(attempts >= 2, "{attempts}"),
        other => panic!("{other}"),
    }
}
