//! CloudWatch's alarms read through its Query API (Amazon CloudWatch API Reference,
//! "DescribeAlarms", "DescribeAlarmHistory" and "Making API requests": form-encoded POST, SigV4 with the signing name
//! `monitoring`, XML answers in the `http://monitoring.amazonaws.com/doc/2010-08-01/`
//! namespace). Two calls do not need a whole SDK client, whose protocol (Smithy RPC v2 CBOR)
//! the local AWS stand-in cannot answer; the query protocol it can, so the alarms are tested
//! against it.

use aws_config::SdkConfig;
use aws_smithy_runtime_api::client::identity::Identity;
use aws_smithy_xml::decode::{Document, ScopedDecoder, XmlDecodeError, try_data};

mod history;

use crate::adapters::http::Repeat;
use crate::adapters::signed_api::{SignedApi, SignedCallError};
use crate::domain::alert::cut_at_char;
use crate::domain::status::{AlarmEvent, AlarmLine, Alarms};

const API_VERSION: &str = "2010-08-01";
const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";
/// 100 pages of up to 100 alarms: far more than a stack has.
const MAX_PAGES: usize = 100;

/// What went wrong with a call, named by its action.
#[derive(Debug, thiserror::Error)]
pub enum CloudWatchError {
    #[error("CloudWatch {action}: {error}")]
    Call { action: String, error: SignedCallError },
    #[error("CloudWatch {action}: HTTP {status}: {error}")]
    Refused { action: String, status: u16, error: String },
    #[error("CloudWatch {action}: unreadable answer ({source})")]
    Unreadable { action: String, source: AnswerError },
    #[error("CloudWatch {action}: more than {MAX_PAGES} pages for {prefix:?}")]
    TooManyPages { action: String, prefix: String },
}

/// An answer that is not the XML the API reference describes.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("{0}")]
    Xml(#[from] XmlDecodeError),
    #[error("<{found}> where <{expected}> was expected")]
    Root { found: String, expected: &'static str },
    #[error("alarm history item of {alarm}: timestamp {value:?} is not ISO 8601")]
    Timestamp { alarm: String, value: String },
}

/// A signed Query API caller for CloudWatch.
#[derive(Clone, Debug)]
pub struct CloudWatch {
    api: SignedApi,
}

impl CloudWatch {
    /// The region, credentials and endpoint (an override, or the region's public one) of
    /// `sdk`; a missing region or credentials fail each call, naming what is missing.
    pub fn new(sdk: &SdkConfig, http: reqwest::Client) -> CloudWatch {
        CloudWatch { api: SignedApi::new(sdk, http, "monitoring", "monitoring") }
    }

    /// `action` with `params`; the answer's XML body, or what went wrong, named.
    pub async fn call(&self, action: &str, params: &[(&str, &str)]) -> Result<String, CloudWatchError> {
        let identity = self.identity(action).await?;
        self.send(action, params, &identity).await
    }

    /// The credentials to sign with, fetched once per read.
    async fn identity(&self, action: &str) -> Result<Identity, CloudWatchError> {
        self.api.identity().await.map_err(|error| CloudWatchError::Call { action: action.to_owned(), error })
    }

    async fn send(
        &self,
        action: &str,
        params: &[(&str, &str)],
        identity: &Identity,
    ) -> Result<String, CloudWatchError> {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("Action", action)
            .append_pair("Version", API_VERSION)
            .extend_pairs(params)
            .finish();
        // Reads and puts are idempotent: retried after a refused connection, a 5xx or a timeout.
        let (status, text) = self
            .api
            .post(identity, &[("content-type", FORM)], body, Repeat::Idempotent)
            .await
            .map_err(|error| CloudWatchError::Call { action: action.to_owned(), error })?;
        if !(200..300).contains(&status) {
            return Err(CloudWatchError::Refused { action: action.to_owned(), status, error: error_of(&text) });
        }
        Ok(text)
    }
}

impl Alarms for CloudWatch {
    type Error = CloudWatchError;

    async fn firing(&self, prefix: &str) -> Result<Vec<AlarmLine>, CloudWatchError> {
        self.alarms_in_alarm(prefix).await
    }

    async fn went_to_alarm(
        &self,
        names: &[String],
        since: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<AlarmEvent>, CloudWatchError> {
        let mut events = Vec::new();
        for name in names {
            events.extend(self.alarm_history(name, since).await?);
        }
        events.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.name.cmp(&b.name)));
        Ok(events)
    }
}

impl CloudWatch {
    /// Every metric alarm under `prefix` in state ALARM, all pages.
    async fn alarms_in_alarm(&self, prefix: &str) -> Result<Vec<AlarmLine>, CloudWatchError> {
        const ACTION: &str = "DescribeAlarms";
        let identity = self.identity(ACTION).await?;
        let mut lines = Vec::new();
        let mut next_token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut params = vec![("AlarmNamePrefix", prefix), ("StateValue", "ALARM")];
            if let Some(token) = &next_token {
                params.push(("NextToken", token));
            }
            let page = self.send(ACTION, &params, &identity).await?;
            let (alarms, token) = parse_describe_alarms(&page)
                .map_err(|source| CloudWatchError::Unreadable { action: ACTION.to_owned(), source })?;
            lines.extend(alarms);
            // The last page has no token; a repeated one would never end (the SDK's paginators
            // stop there too).
            match token {
                Some(token) if !token.is_empty() && next_token.as_ref() != Some(&token) => next_token = Some(token),
                _ => return Ok(lines),
            }
        }
        Err(CloudWatchError::TooManyPages { action: ACTION.to_owned(), prefix: prefix.to_owned() })
    }
}

/// The metric alarms of a `DescribeAlarmsResponse` and its `NextToken`.
fn parse_describe_alarms(xml: &str) -> Result<(Vec<AlarmLine>, Option<String>), AnswerError> {
    parse_page(xml, ("DescribeAlarmsResponse", "DescribeAlarmsResult", "MetricAlarms"), in_alarm)
}

/// One page of a Query API answer, `<Response><Result><List><member>…</List><NextToken>`: the
/// members `member` keeps, and the token of the next page.
fn parse_page<T>(
    xml: &str,
    (response, result_tag, list): (&'static str, &str, &str),
    mut member: impl FnMut(&mut ScopedDecoder) -> Result<Option<T>, AnswerError>,
) -> Result<(Vec<T>, Option<String>), AnswerError> {
    let mut doc = Document::new(xml);
    let mut root = doc.root_element()?;
    if !root.start_el().matches(response) {
        let found = root.start_el().local().to_owned();
        return Err(AnswerError::Root { found, expected: response });
    }
    let (mut kept, mut token) = (Vec::new(), None);
    while let Some(mut result) = root.next_tag() {
        if !result.start_el().matches(result_tag) {
            continue;
        }
        while let Some(mut field) = result.next_tag() {
            if field.start_el().matches(list) {
                while let Some(mut item) = field.next_tag() {
                    kept.extend(member(&mut item)?);
                }
            } else if field.start_el().matches("NextToken") {
                token = Some(text(&mut field)?);
            }
        }
    }
    Ok((kept, token))
}

/// The alarm of a `member`, if its state is ALARM: the request asks for those only, and a
/// server that ignores `StateValue` (the local stand-in does when a name prefix is given) must
/// not make an alarm that is OK look firing.
fn in_alarm(member: &mut ScopedDecoder) -> Result<Option<AlarmLine>, AnswerError> {
    let mut line = AlarmLine { name: String::new(), reason: String::new() };
    let mut state = String::new();
    while let Some(mut field) = member.next_tag() {
        if field.start_el().matches("AlarmName") {
            line.name = text(&mut field)?;
        } else if field.start_el().matches("StateReason") {
            line.reason = text(&mut field)?;
        } else if field.start_el().matches("StateValue") {
            state = text(&mut field)?;
        }
    }
    Ok((state == "ALARM").then_some(line))
}

fn text(tag: &mut ScopedDecoder) -> Result<String, AnswerError> {
    Ok(try_data(tag)?.into_owned())
}

/// `Code: Message` of an `ErrorResponse`, or the start of a body that is not one.
fn error_of(xml: &str) -> String {
    let field = |name: &str| {
        let open = format!("<{name}>");
        let start = xml.find(&open)? + open.len();
        let end = xml[start..].find(&format!("</{name}>"))? + start;
        Some(xml[start..end].trim().to_owned())
    };
    match (field("Code"), field("Message")) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code,
        _ => cut_at_char(xml.trim(), 300).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The DescribeAlarms answer as the API reference shows it (fields this code does not
    /// read left out), over two pages.
    #[test]
    fn a_describe_alarms_page_gives_its_alarms_and_next_token() {
        let xml = r#"<DescribeAlarmsResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/">
  <DescribeAlarmsResult>
    <CompositeAlarms/>
    <MetricAlarms>
      <member>
        <AlarmName>cineview-backup-missing</AlarmName>
        <StateValue>ALARM</StateValue>
        <StateReason>Threshold Crossed: no datapoints were received for 26 periods &amp; more</StateReason>
        <Dimensions/>
      </member>
      <member><AlarmName>cineview-health-checker-errors</AlarmName><StateValue>ALARM</StateValue><StateReason/></member>
      <member><AlarmName>cineview-api-p95</AlarmName><StateValue>OK</StateValue><StateReason>fine</StateReason></member>
    </MetricAlarms>
    <NextToken>page-2</NextToken>
  </DescribeAlarmsResult>
  <ResponseMetadata><RequestId>f2a5b0c4-1111-2222-3333-444455556666</RequestId></ResponseMetadata>
</DescribeAlarmsResponse>"#;
        let (alarms, token) = parse_describe_alarms(xml).expect("parsed");
        assert_eq!(alarms.len(), 2);
        assert_eq!(alarms[0].name, "cineview-backup-missing");
        assert!(alarms[0].reason.ends_with("26 periods & more"), "{}", alarms[0].reason);
        assert_eq!((alarms[1].name.as_str(), alarms[1].reason.as_str()), ("cineview-health-checker-errors", ""));
        assert_eq!(token.as_deref(), Some("page-2"));

        let last = r#"<DescribeAlarmsResponse><DescribeAlarmsResult><MetricAlarms/></DescribeAlarmsResult></DescribeAlarmsResponse>"#;
        assert_eq!(parse_describe_alarms(last).expect("parsed"), (Vec::new(), None));
    }

    #[test]
    fn an_error_answer_is_named_by_its_code_and_message() {
        let xml = r#"<ErrorResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/"><Error><Type>Sender</Type>
<Code>AccessDenied</Code><Message>User is not authorized to perform: cloudwatch:DescribeAlarms</Message></Error>
<RequestId>r</RequestId></ErrorResponse>"#;
        assert_eq!(error_of(xml), "AccessDenied: User is not authorized to perform: cloudwatch:DescribeAlarms");
        assert_eq!(error_of("<html>bad gateway</html>"), "<html>bad gateway</html>");
        assert!(parse_describe_alarms(xml).is_err());
    }
}
