//! Accounts, API tokens and browser sessions: rows only. Hashing, token formats and the rules
//! about who may do what live in `access`; nothing here sees a password or a secret in clear.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now_micros, Index, IndexError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRow {
    pub name: String,
    pub role: String,
    pub institution: String,
    #[serde(skip)]
    pub password_hash: String,
    pub pixel_access: bool,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The name and licence (or staff) number a signed report carries.
    pub full_name: String,
    pub licence: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TokenRow {
    pub id: String,
    pub user_name: String,
    pub label: String,
    #[serde(skip)]
    pub secret_sha256: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

const USER_COLUMNS: &str = "name, role, institution, password_hash, pixel_access, disabled_at,
    created_at, updated_at, full_name, licence";
const TOKEN_COLUMNS: &str = "id, user_name, label, secret_sha256, created_at, expires_at,
    revoked_at, last_used_at";

fn user_row(r: &AnyRow) -> Result<UserRow, sqlx::Error> {
    Ok(UserRow {
        name: r.try_get(0)?,
        role: r.try_get(1)?,
        institution: r.try_get(2)?,
        password_hash: r.try_get(3)?,
        pixel_access: r.try_get::<i64, _>(4)? != 0,
        disabled_at: r.try_get(5)?,
        created_at: r.try_get(6)?,
        updated_at: r.try_get(7)?,
        full_name: r.try_get(8)?,
        licence: r.try_get(9)?,
    })
}

fn token_row(r: &AnyRow) -> Result<TokenRow, sqlx::Error> {
    Ok(TokenRow {
        id: r.try_get(0)?,
        user_name: r.try_get(1)?,
        label: r.try_get(2)?,
        secret_sha256: r.try_get(3)?,
        created_at: r.try_get(4)?,
        expires_at: r.try_get(5)?,
        revoked_at: r.try_get(6)?,
        last_used_at: r.try_get(7)?,
    })
}

/// What creating a row found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    Created,
    AlreadyExists,
}

impl Index {
    pub async fn create_user(&self, user: &UserRow) -> Result<Created, IndexError> {
        let result = sqlx::query(
            "INSERT INTO users (name, role, institution, password_hash, pixel_access,
               disabled_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, NULL, $6, $6)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(&user.name)
        .bind(&user.role)
        .bind(&user.institution)
        .bind(&user.password_hash)
        .bind(i64::from(user.pixel_access))
        .bind(now_micros())
        .execute(&self.pool)
        .await
        .map_err(IndexError::query("insert user"))?;
        Ok(if result.rows_affected() == 1 {
            Created::Created
        } else {
            Created::AlreadyExists
        })
    }

    pub async fn user(&self, name: &str) -> Result<Option<UserRow>, IndexError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(IndexError::query("select user"))?;
        row.as_ref()
            .map(user_row)
            .transpose()
            .map_err(IndexError::query("decode user"))
    }

    /// Sets the name and licence number a user signs with; returns whether the user exists.
    pub async fn set_profile(
        &self,
        name: &str,
        full_name: &str,
        licence: &str,
    ) -> Result<bool, IndexError> {
        Ok(sqlx::query(
            "UPDATE users SET full_name = $2, licence = $3, updated_at = $4 WHERE name = $1",
        )
        .bind(name)
        .bind(full_name)
        .bind(licence)
        .bind(now_micros())
        .execute(&self.pool)
        .await
        .map_err(IndexError::query("set profile"))?
        .rows_affected()
            == 1)
    }

    pub async fn users(&self) -> Result<Vec<UserRow>, IndexError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY name");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(IndexError::query("select users"))?;
        rows.iter()
            .map(user_row)
            .collect::<Result<_, _>>()
            .map_err(IndexError::query("decode user"))
    }

    /// Sets a password hash; returns whether the user exists.
    pub async fn set_password_hash(&self, name: &str, hash: &str) -> Result<bool, IndexError> {
        let result =
            sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE name = $1")
                .bind(name)
                .bind(hash)
                .bind(now_micros())
                .execute(&self.pool)
                .await
                .map_err(IndexError::query("update password"))?;
        Ok(result.rows_affected() == 1)
    }

    /// Disables an account and ends its sessions; returns whether the user exists.
    pub async fn disable_user(&self, name: &str) -> Result<bool, IndexError> {
        let now = now_micros();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(IndexError::query("begin"))?;
        let result = sqlx::query(
            "UPDATE users SET disabled_at = COALESCE(disabled_at, $2), updated_at = $2
             WHERE name = $1",
        )
        .bind(name)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(IndexError::query("disable user"))?;
        sqlx::query("DELETE FROM sessions WHERE user_name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(IndexError::query("end sessions"))?;
        tx.commit().await.map_err(IndexError::query("commit"))?;
        Ok(result.rows_affected() == 1)
    }

    pub async fn insert_token(&self, token: &TokenRow) -> Result<(), IndexError> {
        sqlx::query(
            "INSERT INTO api_tokens (id, user_name, label, secret_sha256, created_at, expires_at,
               revoked_at, last_used_at)
             VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL)",
        )
        .bind(&token.id)
        .bind(&token.user_name)
        .bind(&token.label)
        .bind(&token.secret_sha256)
        .bind(token.created_at)
        .bind(token.expires_at)
        .execute(&self.pool)
        .await
        .map_err(IndexError::query("insert token"))?;
        Ok(())
    }

    pub async fn token(&self, id: &str) -> Result<Option<TokenRow>, IndexError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(IndexError::query("select token"))?;
        row.as_ref()
            .map(token_row)
            .transpose()
            .map_err(IndexError::query("decode token"))
    }

    pub async fn tokens(&self) -> Result<Vec<TokenRow>, IndexError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, id");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await
            .map_err(IndexError::query("select tokens"))?;
        rows.iter()
            .map(token_row)
            .collect::<Result<_, _>>()
            .map_err(IndexError::query("decode token"))
    }

    /// Revokes a token; returns whether it exists.
    pub async fn revoke_token(&self, id: &str) -> Result<bool, IndexError> {
        let result = sqlx::query(
            "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1",
        )
        .bind(id)
        .bind(now_micros())
        .execute(&self.pool)
        .await
        .map_err(IndexError::query("revoke token"))?;
        Ok(result.rows_affected() == 1)
    }

    pub async fn touch_token(&self, id: &str) -> Result<(), IndexError> {
        sqlx::query("UPDATE api_tokens SET last_used_at = $2 WHERE id = $1")
            .bind(id)
            .bind(now_micros())
            .execute(&self.pool)
            .await
            .map_err(IndexError::query("touch token"))?;
        Ok(())
    }

    pub async fn insert_session(
        &self,
        secret_sha256: &str,
        user_name: &str,
        expires_at: i64,
    ) -> Result<(), IndexError> {
        sqlx::query(
            "INSERT INTO sessions (secret_sha256, user_name, created_at, expires_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $3)",
        )
        .bind(secret_sha256)
        .bind(user_name)
        .bind(now_micros())
        .bind(expires_at)
        .execute(&self.pool)
        .await
        .map_err(IndexError::query("insert session"))?;
        Ok(())
    }

    /// The user of a live session: not past its end, and used within `idle_micros`. Its last
    /// use is recorded, at most once a minute (a viewer loading frames asks many times).
    pub async fn session_user(
        &self,
        secret_sha256: &str,
        idle_micros: i64,
    ) -> Result<Option<String>, IndexError> {
        let now = now_micros();
        let row = sqlx::query(
            "SELECT user_name, last_seen_at FROM sessions
             WHERE secret_sha256 = $1 AND expires_at > $2 AND last_seen_at > $3",
        )
        .bind(secret_sha256)
        .bind(now)
        .bind(now - idle_micros)
        .fetch_optional(&self.pool)
        .await
        .map_err(IndexError::query("select session"))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let (user, seen): (String, i64) = (|| Ok((row.try_get(0)?, row.try_get(1)?)))()
            .map_err(IndexError::query("decode session"))?;
        if now - seen > 60_000_000 {
            sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE secret_sha256 = $1")
                .bind(secret_sha256)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(IndexError::query("touch session"))?;
        }
        Ok(Some(user))
    }

    pub async fn delete_session(&self, secret_sha256: &str) -> Result<(), IndexError> {
        sqlx::query("DELETE FROM sessions WHERE secret_sha256 = $1 OR expires_at < $2")
            .bind(secret_sha256)
            .bind(now_micros())
            .execute(&self.pool)
            .await
            .map_err(IndexError::query("delete session"))?;
        Ok(())
    }
}
