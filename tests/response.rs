//! The response PUT against a recording loopback server: exact headers and body, retries
//! on 5xx and transport errors, none on 4xx, no redirect followed, a hang bounded by the
//! deadline, https spoken in TLS, and messages that never show the presigned query.

mod support;

use ecr_policy_provider::response::{SendError, Sender};
use std::time::Duration;
use support::{Answer, Recorder};
use tokio::time::Instant;
use url::Url;

const BODY: &[u8] = br#"{"Status":"SUCCESS","PhysicalResourceId":"registry-policy:us-east-1:123456789012","StackId":"s","RequestId":"r","LogicalResourceId":"l","Data":{"Region":"us-east-1"}}"#;

/// The presigned query of the test URLs holds these: a credential, which no message may show.
const SECRETS: [&str; 3] = ["secret-signature", "AKIDSECRET", "X-Amz-"];

/// [`BODY`] PUT to `url` by a sender with short pauses, until `left` from now.
async fn send_within(url: &str, left: Duration) -> Result<u32, SendError> {
    let url = Url::parse(url).expect("url");
    Sender::new()
        .with_base_pause(Duration::from_millis(20))
        .send(&url, BODY.to_vec(), Instant::now() + left)
        .await
}

/// A port with nothing listening: bind, learn the port, close.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[tokio::test]
async fn two_503s_then_success_sends_the_same_exact_bytes_three_times() {
    let recorder = Recorder::start(vec![Answer::Status(503), Answer::Status(503)]).await;
    let attempts = send_within(&recorder.url, Duration::from_secs(10))
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
    let err = send_within(&recorder.url, Duration::from_secs(10))
        .await
        .expect_err("403");
    assert!(matches!(err, SendError::Refused(403)), "{err}");
    assert_eq!(recorder.requests().len(), 1);
}

#[tokio::test]
async fn a_redirect_is_retried_where_the_url_points_and_never_followed() {
    // GIVEN a response URL that first redirects elsewhere, then takes the response
    let elsewhere = Recorder::start(Vec::new()).await;
    let recorder = Recorder::start(vec![Answer::RedirectTo(elsewhere.url.clone().leak())]).await;
    // WHEN the response is sent
    let attempts = send_within(&recorder.url, Duration::from_secs(10))
        .await
        .expect("delivered on the second attempt");
    // THEN the body went to the URL that was checked, twice, and never where the redirect
    // pointed
    assert_eq!(attempts, 2);
    assert_eq!(recorder.requests().len(), 2);
    assert!(
        elsewhere.requests().is_empty(),
        "{:?}",
        elsewhere.requests()
    );
}

#[tokio::test]
async fn a_server_that_never_answers_is_given_up_at_the_deadline() {
    let recorder = Recorder::start(vec![Answer::Hang, Answer::Hang, Answer::Hang]).await;
    let started = Instant::now();
    let err = send_within(&recorder.url, Duration::from_millis(800))
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
    let url = format!("http://127.0.0.1:{}/b/k", closed_port());
    let err = send_within(&url, Duration::from_millis(500))
        .await
        .expect_err("nothing listens");
    match err {
        SendError::OutOfTime { attempts, .. } => assert!(attempts >= 2, "{attempts}"),
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn a_transport_error_says_what_failed_and_never_shows_the_presigned_query() {
    // GIVEN a presigned URL on a port nothing listens on, and one whose server never answers
    let refused_url = format!(
        "http://127.0.0.1:{}/b/k?X-Amz-Signature=secret-signature&X-Amz-Credential=AKIDSECRET",
        closed_port()
    );
    let recorder = Recorder::start(vec![Answer::Hang]).await;
    // WHEN each is sent until its deadline
    let left = Duration::from_millis(300);
    let refused = send_within(&refused_url, left).await.expect_err("refused");
    let hung = send_within(&recorder.url, left)
        .await
        .expect_err("no answer");
    // THEN each message names its cause, and neither holds the query
    let (refused, hung) = (refused.to_string(), hung.to_string());
    assert!(refused.contains("Connection refused"), "{refused}");
    assert!(hung.contains("no answer within"), "{hung}");
    for text in [&refused, &hung] {
        for secret in SECRETS {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
}

#[tokio::test]
async fn an_https_response_url_is_spoken_to_in_tls() {
    // GIVEN a loopback listener that keeps the first bytes of its first connection
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let first_bytes = tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        let (mut stream, _) = listener.accept().await.expect("a connection");
        let mut head = [0u8; 3];
        stream.read_exact(&mut head).await.expect("bytes");
        head
    });
    // WHEN a response is sent to it over https
    let url = format!("https://127.0.0.1:{port}/b/k?X-Amz-Signature=secret-signature");
    let err = send_within(&url, Duration::from_millis(500))
        .await
        .expect_err("no TLS server there");
    // THEN the connection opened with a TLS handshake record (type 22, version 3.x), and the
    // failed handshake is retried like any transport error, without the query in its message
    let head = tokio::time::timeout(Duration::from_secs(2), first_bytes)
        .await
        .expect("the sender connected")
        .expect("listener");
    assert_eq!(head[..2], [0x16, 0x03], "{head:?}");
    assert!(matches!(err, SendError::OutOfTime { .. }), "{err}");
    assert!(!err.to_string().contains("secret-signature"), "{err}");
}
