//! Who a joiner is: the token's subject when the server checks tokens, else whoever the
//! client says it is (or a generated anonymous id, the same for all of a connection's
//! rooms). The core is handed a settled [`JoinRequest`] and never sees a token.

use presence_core::JoinRequest;
use presence_protocol::{ErrorCode, Join, SessionId, UserId};

use crate::auth::Verifier;

/// What one connection needs to settle its joins.
#[derive(Debug)]
pub(crate) struct Identity {
    /// A token given as `?token=` on the upgrade, used by joins that carry none.
    url_token: Option<String>,
    /// The generated id of a client that joined without one, reused for its other rooms.
    anon_id: Option<UserId>,
}

impl Identity {
    pub(crate) fn new(url_token: Option<String>) -> Self {
        Identity {
            url_token,
            anon_id: None,
        }
    }

    /// Decides who is joining: the token's subject, or whoever the client says it is.
    pub(crate) fn settle(
        &mut self,
        verifier: Option<&Verifier>,
        join: Join,
    ) -> Result<JoinRequest, (ErrorCode, String)> {
        let refuse = |code: ErrorCode, message: String| (code, message);
        let (user_id, name) = match verifier {
            Some(verifier) => {
                let token = join
                    .token
                    .as_deref()
                    .or(self.url_token.as_deref())
                    .ok_or_else(|| {
                        refuse(
                            ErrorCode::Unauthorized,
                            "a token is required to join".to_owned(),
                        )
                    })?;
                let identity = verifier
                    .verify(token)
                    .map_err(|error| refuse(ErrorCode::Unauthorized, error.to_string()))?;
                if join
                    .user
                    .id
                    .as_ref()
                    .is_some_and(|id| *id != identity.user_id)
                {
                    return Err(refuse(
                        ErrorCode::Unauthorized,
                        "user.id differs from the token's sub".to_owned(),
                    ));
                }
                if !identity.allows(&join.room) {
                    return Err(refuse(
                        ErrorCode::Forbidden,
                        format!("the token does not allow room {}", join.room),
                    ));
                }
                (identity.user_id, identity.name.or(join.user.name))
            }
            None => {
                let id = match join.user.id {
                    Some(id) => id,
                    None => self
                        .anon_id
                        .get_or_insert_with(|| UserId::generated("anon-", rand::random()))
                        .clone(),
                };
                (id, join.user.name)
            }
        };
        Ok(JoinRequest {
            room: join.room,
            user_id,
            name,
            // A fresh id only when the client named none: a restore keeps its own.
            session_id: join
                .user
                .session_id
                .unwrap_or_else(|| SessionId::generated("s-", rand::random())),
            state: join.state,
            batch: join.batch,
            view: join.view,
            spectator: join.spectator,
        })
    }
}
