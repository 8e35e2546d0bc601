//! An alarm's state updates (Amazon CloudWatch API Reference, "DescribeAlarmHistory":
//! `AlarmName`, `HistoryItemType=StateUpdate`, `StartDate`; the answer's
//! `DescribeAlarmHistoryResult` holds `AlarmHistoryItems`, each an `AlarmHistoryItem` with
//! `AlarmName`, `HistoryData` (JSON: `oldState` and `newState`, each with its `stateValue`),
//! `HistoryItemType`, `HistorySummary` and `Timestamp`, and `NextToken` while more pages
//! follow).

use aws_smithy_xml::decode::ScopedDecoder;
use chrono::{DateTime, SecondsFormat, Utc};

use super::{AnswerError, CloudWatch, CloudWatchError, MAX_PAGES, parse_page, text};
use crate::domain::status::AlarmEvent;

const ACTION: &str = "DescribeAlarmHistory";

impl CloudWatch {
    /// The times alarm `name` went to ALARM since `since`, all pages.
    pub(super) async fn alarm_history(
        &self,
        name: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<AlarmEvent>, CloudWatchError> {
        let identity = self.identity(ACTION).await?;
        let start = since.to_rfc3339_opts(SecondsFormat::Secs, true);
        let mut events = Vec::new();
        let mut next_token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut params =
                vec![("AlarmName", name), ("HistoryItemType", "StateUpdate"), ("StartDate", start.as_str())];
            if let Some(token) = &next_token {
                params.push(("NextToken", token));
            }
            let page = self.send(ACTION, &params, &identity).await?;
            let (page_events, token) = parse_alarm_history(&page)
                .map_err(|source| CloudWatchError::Unreadable { action: ACTION.to_owned(), source })?;
            // StartDate bounds the answer; an item before it (a server that ignores it) is not
            // of the window.
            events.extend(page_events.into_iter().filter(|e| e.at >= since));
            match token {
                Some(token) if !token.is_empty() && next_token.as_ref() != Some(&token) => next_token = Some(token),
                _ => return Ok(events),
            }
        }
        Err(CloudWatchError::TooManyPages { action: ACTION.to_owned(), prefix: name.to_owned() })
    }
}

/// The state updates to ALARM of a `DescribeAlarmHistoryResponse`, and its `NextToken`.
pub(super) fn parse_alarm_history(xml: &str) -> Result<(Vec<AlarmEvent>, Option<String>), AnswerError> {
    parse_page(xml, ("DescribeAlarmHistoryResponse", "DescribeAlarmHistoryResult", "AlarmHistoryItems"), to_alarm)
}

/// The item as an event if it is a state update whose new state is ALARM: by `HistoryData`'s
/// `newState.stateValue`, or, if that is not the documented JSON, by the summary CloudWatch
/// writes ("Alarm updated from OK to ALARM").
fn to_alarm(member: &mut ScopedDecoder) -> Result<Option<AlarmEvent>, AnswerError> {
    let (mut name, mut data, mut kind, mut summary, mut timestamp) =
        (String::new(), String::new(), String::new(), String::new(), String::new());
    while let Some(mut field) = member.next_tag() {
        let slot = match field.start_el().local() {
            "AlarmName" => &mut name,
            "HistoryData" => &mut data,
            "HistoryItemType" => &mut kind,
            "HistorySummary" => &mut summary,
            "Timestamp" => &mut timestamp,
            _ => continue,
        };
        *slot = text(&mut field)?;
    }
    let new_state = serde_json::from_str::<serde_json::Value>(&data)
        .ok()
        .and_then(|d| d["newState"]["stateValue"].as_str().map(str::to_owned));
    let to_alarm = match new_state {
        Some(state) => state == "ALARM",
        None => summary.trim_end().ends_with("to ALARM"),
    };
    if kind != "StateUpdate" || !to_alarm {
        return Ok(None);
    }
    let at = DateTime::parse_from_rfc3339(timestamp.trim())
        .map_err(|_| AnswerError::Timestamp { alarm: name.clone(), value: timestamp.clone() })?
        .with_timezone(&Utc);
    Ok(Some(AlarmEvent { name, at, summary }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DescribeAlarmHistory answer in the shape the API reference documents: two state
    /// updates (to ALARM, back to OK) and a page token.
    const PAGE: &str = r#"<DescribeAlarmHistoryResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/">
  <DescribeAlarmHistoryResult>
    <AlarmHistoryItems>
      <member>
        <AlarmName>cineview-alert-forwarder-errors</AlarmName>
        <AlarmType>MetricAlarm</AlarmType>
        <HistoryData>{"version":"1.0","oldState":{"stateValue":"ALARM","stateReason":"Threshold Crossed"},"newState":{"stateValue":"OK","stateReason":"Threshold Crossed: 1 datapoint [0.0] was not greater than or equal to the threshold (1.0)."}}</HistoryData>
        <HistoryItemType>StateUpdate</HistoryItemType>
        <HistorySummary>Alarm updated from ALARM to OK</HistorySummary>
        <Timestamp>2026-12-02T09:15:00.000Z</Timestamp>
      </member>
      <member>
        <AlarmName>cineview-alert-forwarder-errors</AlarmName>
        <AlarmType>MetricAlarm</AlarmType>
        <HistoryData>{"version":"1.0","oldState":{"stateValue":"OK","stateReason":"Threshold Crossed"},"newState":{"stateValue":"ALARM","stateReason":"Threshold Crossed: 1 datapoint [2.0] was greater than or equal to the threshold (1.0)."}}</HistoryData>
        <HistoryItemType>StateUpdate</HistoryItemType>
        <HistorySummary>Alarm updated from OK to ALARM</HistorySummary>
        <Timestamp>2026-12-02T08:10:27.263Z</Timestamp>
      </member>
    </AlarmHistoryItems>
    <NextToken>page-2</NextToken>
  </DescribeAlarmHistoryResult>
  <ResponseMetadata><RequestId>7b2c3d4e-1111-2222-3333-444455556666</RequestId></ResponseMetadata>
</DescribeAlarmHistoryResponse>"#;

    #[test]
    fn a_state_update_to_alarm_is_an_event_with_its_time() {
        let (events, token) = parse_alarm_history(PAGE).expect("parsed");
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].name, "cineview-alert-forwarder-errors");
        assert_eq!(events[0].at.to_rfc3339_opts(SecondsFormat::Millis, true), "2026-12-02T08:10:27.263Z");
        assert_eq!(events[0].summary, "Alarm updated from OK to ALARM");
        assert_eq!(token.as_deref(), Some("page-2"));
    }

    #[test]
    fn an_empty_last_page_and_a_wrong_answer() {
        let last = "<DescribeAlarmHistoryResponse><DescribeAlarmHistoryResult><AlarmHistoryItems/>\
                    </DescribeAlarmHistoryResult></DescribeAlarmHistoryResponse>";
        assert_eq!(parse_alarm_history(last).expect("parsed"), (Vec::new(), None));
        let err = parse_alarm_history("<DescribeAlarmsResponse/>").expect_err("not a history");
        assert!(err.to_string().contains("<DescribeAlarmHistoryResponse> was expected"), "{err}");
        let bad_time = PAGE.replace("2026-12-02T08:10:27.263Z", "yesterday");
        assert!(matches!(parse_alarm_history(&bad_time), Err(AnswerError::Timestamp { .. })));
    }
}
