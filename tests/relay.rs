//! Lambda's `Invoke` as the function sends it to go on in its next invocation (src/relay.rs,
//! CONTRACT 15), against a recording loopback server: the signed request, queued only on 202,
//! any other status refused with Lambda's message, shortened.

mod support;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use ecr_policy_provider::relay::{LambdaRelay, Relay};
use support::{Answer, Recorder};

const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function:provider";

fn relay(recorder: &Recorder) -> LambdaRelay {
    let config = aws_config::SdkConfig::builder()
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDRELAYTEST",
            "relay-secret",
            None,
            None,
            "test",
        )))
        .endpoint_url(format!("http://{}", recorder.host_port))
        .build();
    LambdaRelay::from_sdk_config(&config)
}

#[tokio::test]
async fn a_202_means_queued_and_the_request_is_an_event_invoke_signed_for_lambda() {
    // GIVEN Lambda accepting the invocation
    let recorder = Recorder::start(vec![Answer::Status(202)]).await;
    // WHEN the function hands its work over
    relay(&recorder)
        .hand_over(ARN, r#"{"Progress":1}"#.into())
        .await
        .expect("queued");
    // THEN one asynchronous Invoke of that function went out, signed, with the payload
    let requests = recorder.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        request.request_line,
        "POST /2015-03-31/functions/arn%3Aaws%3Alambda%3Aus%2Deast%2D1%3A123456789012%3Afunction%3Aprovider/invocations HTTP/1.1"
    );
    assert_eq!(request.header("x-amz-invocation-type"), ["Event"]);
    let authorization = request.header("authorization");
    assert_eq!(authorization.len(), 1);
    assert!(
        authorization[0].starts_with("AWS4-HMAC-SHA256 Credential=AKIDRELAYTEST/")
            && authorization[0].contains("/us-east-1/lambda/aws4_request"),
        "{authorization:?}"
    );
    assert_eq!(request.body, br#"{"Progress":1}"#);
}

#[tokio::test]
async fn any_other_status_is_refused_with_lambdas_message_shortened() {
    // GIVEN Lambda answering 200 (a synchronous invocation's status), then 429 with a long
    // message
    let message: &'static str = "x".repeat(400).leak();
    let recorder =
        Recorder::start(vec![Answer::Status(200), Answer::StatusWith(429, message)]).await;
    let relay = relay(&recorder);
    // WHEN the function hands its work over, twice
    let ok = relay.hand_over(ARN, "{}".into()).await.expect_err("200");
    let throttled = relay.hand_over(ARN, "{}".into()).await.expect_err("429");
    // THEN neither is taken as queued; the message is cut to 300 characters
    assert_eq!(ok.0, "Lambda answered HTTP 200: ");
    assert_eq!(
        throttled.0,
        format!("Lambda answered HTTP 429: {}…", "x".repeat(299))
    );
    assert_eq!(recorder.requests().len(), 2, "no retry of its own");
}
