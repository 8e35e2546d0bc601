//! The ops topic's and the pager topic's subscriptions confirmed: SNS lists an unconfirmed one
//! with the `SubscriptionArn` "PendingConfirmation" (ListSubscriptionsByTopic), and delivers
//! nothing to it.

use crate::deployed::State;

/// What SNS's `SubscriptionArn` says of a subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    Confirmed,
    /// The endpoint has not confirmed yet (an e-mail's link not followed).
    Pending,
    /// SNS is deleting it ("Deleted"), or answered something this does not know.
    Other(String),
}

/// The `SubscriptionArn` of `ListSubscriptionsByTopic`: an ARN when confirmed,
/// "PendingConfirmation" until the endpoint confirms.
pub fn classify(subscription_arn: Option<&str>) -> Confirmation {
    match subscription_arn {
        Some(arn) if arn.starts_with("arn:") => Confirmation::Confirmed,
        Some("PendingConfirmation") => Confirmation::Pending,
        Some(other) => Confirmation::Other(other.to_owned()),
        None => Confirmation::Other("no SubscriptionArn".to_owned()),
    }
}

/// One subscription as SNS lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub protocol: String,
    pub endpoint: String,
    pub arn: Option<String>,
}

/// The state of topic `topic`'s subscriptions: at least one (`what` names it), each confirmed.
pub fn judge(topic: &str, what: &str, subscriptions: &[Subscription], prefix: &str) -> State {
    if subscriptions.is_empty() {
        return State::failed(
            format!("{topic} has no subscription: {what} would reach no one"),
            format!(
                "aws sns subscribe --topic-arn {topic} --protocol email --notification-endpoint <address> \
                 (or sam deploy --parameter-overrides NamePrefix={prefix} OpsEmail=<address> PagerEndpoint=<pager>)"
            ),
        );
    }
    let mut unconfirmed = Vec::new();
    let mut fixes = Vec::new();
    for s in subscriptions {
        match classify(s.arn.as_deref()) {
            Confirmation::Confirmed => {}
            Confirmation::Pending => {
                unconfirmed.push(format!("{} {} is pending confirmation", s.protocol, s.endpoint));
                fixes.push(confirm_fix(s, topic));
            }
            Confirmation::Other(said) => {
                unconfirmed.push(format!("{} {} is {said}", s.protocol, s.endpoint));
                fixes.push(format!(
                    "aws sns subscribe --topic-arn {topic} --protocol {} --notification-endpoint {}",
                    s.protocol, s.endpoint
                ));
            }
        }
    }
    if unconfirmed.is_empty() {
        return State::Ok;
    }
    State::failed(format!("{topic}: {}: SNS delivers nothing to it", unconfirmed.join("; ")), fixes.join("; "))
}

fn confirm_fix(s: &Subscription, topic: &str) -> String {
    if s.protocol == "email" || s.protocol == "email-json" {
        format!(
            "confirm the e-mail sent to {} (\"AWS Notification - Subscription Confirmation\"); lost, send it again: \
             aws sns subscribe --topic-arn {topic} --protocol {} --notification-endpoint {}",
            s.endpoint, s.protocol, s.endpoint
        )
    } else {
        format!(
            "have {} confirm (it must visit the SubscribeURL SNS posted); or again: aws sns subscribe --topic-arn \
             {topic} --protocol {} --notification-endpoint {}",
            s.endpoint, s.protocol, s.endpoint
        )
    }
}

/// Every subscription of `topic`, page by page.
pub async fn list(sns: &aws_sdk_sns::Client, topic: &str) -> Result<Vec<Subscription>, String> {
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = sns.list_subscriptions_by_topic().topic_arn(topic).set_next_token(token.take()).send().await;
        let page = page.map_err(|e| ops_shared::aws::describe_sdk_error(&e))?;
        all.extend(page.subscriptions().iter().map(|s| Subscription {
            protocol: s.protocol().unwrap_or_default().to_owned(),
            endpoint: s.endpoint().unwrap_or_default().to_owned(),
            arn: s.subscription_arn().map(str::to_owned),
        }));
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_owned()),
            _ => return Ok(all),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(protocol: &str, arn: &str) -> Subscription {
        Subscription { protocol: protocol.into(), endpoint: "ops@example.com".into(), arn: Some(arn.into()) }
    }

    #[test]
    fn pending_confirmation_is_unconfirmed_and_says_how_to_confirm() {
        let topic = "arn:aws:sns:us-east-1:123456789012:p-ops-notifications";
        assert_eq!(classify(Some(&format!("{topic}:0b3c9f1e-1d2a-4c55-9a1e-2b6b0e9a7f10"))), Confirmation::Confirmed);
        assert_eq!(classify(Some("PendingConfirmation")), Confirmation::Pending);
        assert_eq!(classify(Some("Deleted")), Confirmation::Other("Deleted".into()));
        let State::Failed { reason, fix } = judge(topic, "alerts", &[sub("email", "PendingConfirmation")], "p") else {
            panic!("pending is not ok")
        };
        assert!(reason.contains("pending confirmation"), "{reason}");
        assert!(
            fix.contains("confirm the e-mail sent to ops@example.com") && fix.contains("aws sns subscribe"),
            "{fix}"
        );
        let https = judge(topic, "pages", &[sub("https", "PendingConfirmation")], "p");
        assert!(matches!(https, State::Failed { ref fix, .. } if fix.contains("SubscribeURL")), "{https:?}");
        assert_eq!(judge(topic, "alerts", &[sub("email", &format!("{topic}:id"))], "p"), State::Ok);
        assert!(
            matches!(judge(topic, "alerts", &[], "p"), State::Failed { ref fix, .. } if fix.contains("aws sns subscribe"))
        );
    }
}
