//! The server's side of SCRAM-SHA-256 (RFC 5802, RFC 7677) over PostgreSQL's SASL messages,
//! checked against StoredKey and ServerKey as PostgreSQL checks them, so the users file holds
//! nothing that logs a user in. pgwire 0.41's own handler needs each user's salted password.
//!
//! Channel binding (SCRAM-SHA-256-PLUS) is not offered; a client that asks for it is refused,
//! and one that supports it (`y,,`) is accepted, as PostgreSQL does when it does not offer it.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use datafusion_postgres::pgwire::api::auth::sasl::scram::random_nonce;
use datafusion_postgres::pgwire::api::auth::{
    DefaultServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use datafusion_postgres::pgwire::api::{
    ClientInfo, ConnectionHandle, ConnectionManager, PgWireConnectionState, PidSecretKeyGenerator,
    RandomPidSecretKeyGenerator,
};
use datafusion_postgres::pgwire::error::{PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::startup::Authentication;
use datafusion_postgres::pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use futures::{Sink, SinkExt};

use super::auth::{ITERATIONS, UsersSource, hmac, sha256};

const MECHANISM: &str = "SCRAM-SHA-256";

/// One connection's exchange.
pub struct Scram {
    users: Arc<UsersSource>,
    parameters: Arc<DefaultServerParameterProvider>,
    connections: Arc<ConnectionManager>,
    keys: Arc<RandomPidSecretKeyGenerator>,
    state: Mutex<State>,
}

enum State {
    /// Waiting for the client's first message (after AuthenticationSASL).
    First,
    /// Server-first sent: what the proof is checked against.
    Final {
        user: String,
        nonce: String,
        gs2: String,
        first_bare: String,
        server_first: String,
    },
    Done,
}

impl Scram {
    pub fn new(
        users: Arc<UsersSource>,
        parameters: Arc<DefaultServerParameterProvider>,
        connections: Arc<ConnectionManager>,
        keys: Arc<RandomPidSecretKeyGenerator>,
    ) -> Self {
        Self { users, parameters, connections, keys, state: Mutex::new(State::First) }
    }
}

fn bad(message: &str) -> PgWireError {
    PgWireError::InvalidScramMessage(message.to_string())
}

/// The client-first message: its GS2 header (`n,,`, `y,,`) and its bare part with the nonce.
fn client_first(text: &str) -> PgWireResult<(String, String, String)> {
    let mut parts = text.splitn(3, ',');
    let (flag, authzid, bare) = (parts.next(), parts.next(), parts.next());
    let (Some(flag), Some(authzid), Some(bare)) = (flag, authzid, bare) else {
        return Err(bad("client-first: expected a GS2 header and n=...,r=..."));
    };
    match flag {
        "n" | "y" => {}
        f if f.starts_with("p=") => {
            return Err(PgWireError::UnsupportedSASLAuthMethod(format!("{MECHANISM}-PLUS (channel binding)")));
        }
        _ => return Err(bad("client-first: the GS2 flag is not n, y or p")),
    }
    let nonce = bare
        .split(',')
        .find_map(|a| a.strip_prefix("r="))
        .filter(|n| !n.is_empty() && n.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b','))
        .ok_or_else(|| bad("client-first: no nonce"))?;
    Ok((format!("{flag},{authzid},"), bare.to_string(), nonce.to_string()))
}

/// Checks a client-final message; returns the server-final (`v=...`) on a right proof.
fn client_final(
    text: &str,
    verifier: &super::auth::Verifier,
    nonce: &str,
    gs2: &str,
    first_bare: &str,
    server_first: &str,
) -> PgWireResult<Option<String>> {
    let (without_proof, proof) = text.rsplit_once(",p=").ok_or_else(|| bad("client-final: no proof"))?;
    let mut attributes = without_proof.split(',');
    if attributes.next() != Some(&format!("c={}", BASE64.encode(gs2))) {
        return Err(bad("client-final: the channel binding does not match the GS2 header"));
    }
    if attributes.next() != Some(&format!("r={nonce}")) {
        return Err(bad("client-final: the nonce does not match"));
    }
    let proof = BASE64.decode(proof).map_err(|_| bad("client-final: the proof is not base64"))?;
    let auth_message = format!("{first_bare},{server_first},{without_proof}");
    let signature = hmac(&verifier.stored_key, auth_message.as_bytes());
    if proof.len() != signature.len() {
        return Ok(None);
    }
    let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
    // Compared in constant time: the proof is the client's, the key the file's.
    let hashed = sha256(&client_key);
    let differs = hashed.len() != verifier.stored_key.len()
        || hashed.iter().zip(&verifier.stored_key).fold(0u8, |acc, (a, b)| acc | (a ^ b)) != 0;
    if differs {
        return Ok(None);
    }
    let server_signature = hmac(&verifier.server_key, auth_message.as_bytes());
    Ok(Some(format!("v={}", BASE64.encode(server_signature))))
}

#[async_trait]
impl StartupHandler for Scram {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(Authentication::SASL(vec![MECHANISM.to_string()])))
                    .await?;
            }
            PgWireFrontendMessage::PasswordMessageFamily(message) => {
                let user = client.metadata().get("user").cloned().unwrap_or_default();
                let first = matches!(*self.state.lock().unwrap_or_else(|e| e.into_inner()), State::First);
                if first {
                    let initial = message.into_sasl_initial_response()?;
                    if initial.auth_method != MECHANISM {
                        return Err(PgWireError::UnsupportedSASLAuthMethod(initial.auth_method));
                    }
                    let data = initial.data.ok_or_else(|| bad("empty client-first"))?;
                    let text = std::str::from_utf8(&data).map_err(|_| bad("client-first is not UTF-8"))?;
                    let (gs2, first_bare, client_nonce) = client_first(text)?;
                    let nonce = format!("{client_nonce}{}", random_nonce());
                    let verifier = self.users.verifier(Some(&user));
                    let server_first = format!("r={nonce},s={},i={ITERATIONS}", BASE64.encode(&verifier.salt));
                    *self.state.lock().unwrap_or_else(|e| e.into_inner()) =
                        State::Final { user: user.clone(), nonce, gs2, first_bare, server_first: server_first.clone() };
                    client
                        .send(PgWireBackendMessage::Authentication(Authentication::SASLContinue(server_first.into())))
                        .await?;
                    return Ok(());
                }
                let state = std::mem::replace(&mut *self.state.lock().unwrap_or_else(|e| e.into_inner()), State::Done);
                let State::Final { user, nonce, gs2, first_bare, server_first } = state else {
                    return Err(PgWireError::InvalidSASLState);
                };
                let response = message.into_sasl_response()?;
                let text = std::str::from_utf8(&response.data).map_err(|_| bad("client-final is not UTF-8"))?;
                let verifier = self.users.verifier(Some(&user));
                let Some(server_final) = client_final(text, verifier, &nonce, &gs2, &first_bare, &server_first)? else {
                    return Err(PgWireError::InvalidPassword(user));
                };
                client
                    .send(PgWireBackendMessage::Authentication(Authentication::SASLFinal(server_final.into())))
                    .await?;
                log_in(client, &self.keys, &self.connections, &self.parameters).await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Logs an authenticated client in: its backend key (for cancel requests, registered as pgwire
/// registers its own handlers' clients), the server's parameters (one version everywhere,
/// settings.rs), ReadyForQuery.
pub async fn log_in<C>(
    client: &mut C,
    keys: &RandomPidSecretKeyGenerator,
    connections: &Arc<ConnectionManager>,
    parameters: &DefaultServerParameterProvider,
) -> PgWireResult<()>
where
    C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let (pid, secret_key) = keys.generate(client);
    client.set_pid_and_secret_key(pid, secret_key.clone());
    let (handle, guard) = connections.register(pid, secret_key);
    client.session_extensions().insert::<Arc<ConnectionHandle>>(handle);
    client.session_extensions().insert(guard);
    finish_authentication(client, parameters).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::auth::Verifier;
    use datafusion_postgres::pgwire::api::auth::sasl::scram::gen_salted_password;

    /// RFC 7677's example exchange (user "user", password "pencil"), checked by StoredKey and
    /// ServerKey only.
    #[test]
    fn rfc_7677_s_exchange_passes_and_a_wrong_proof_does_not() {
        let salt = BASE64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = gen_salted_password("pencil", &salt, ITERATIONS);
        let verifier = Verifier::for_test(salt, &salted);
        let (gs2, bare, client_nonce) = client_first("n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
        assert_eq!((gs2.as_str(), client_nonce.as_str()), ("n,,", "rOprNGfwEbeRWgbNEkqO"));
        let nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let server_first = format!("r={nonce},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096");
        let final_message = format!("c=biws,r={nonce},p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        let server_final = client_final(&final_message, &verifier, nonce, &gs2, &bare, &server_first).unwrap();
        assert_eq!(server_final.as_deref(), Some("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="));
        let wrong = final_message.replace("p=dHzb", "p=dHza");
        assert_eq!(client_final(&wrong, &verifier, nonce, &gs2, &bare, &server_first).unwrap(), None);
        let other_nonce = final_message.replace("r=rOpr", "r=xOpr");
        assert!(client_final(&other_nonce, &verifier, nonce, &gs2, &bare, &server_first).is_err());
        assert!(client_first("p=tls-server-end-point,,n=,r=abc").is_err());
        assert!(client_first("n,,n=user").is_err());
    }
}
