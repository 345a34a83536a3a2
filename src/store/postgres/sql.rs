//! Running statements: each prepared once per connection, in a
//! transaction or on a plain connection.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use crate::store::postgres::error::Step;

pub type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

pub async fn execute(client: &impl GenericClient, sql: &str, params: Params<'_>) -> Step<u64> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.execute(&statement, params).await?)
}

pub async fn query(client: &impl GenericClient, sql: &str, params: Params<'_>) -> Step<Vec<Row>> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.query(&statement, params).await?)
}

pub async fn query_opt(client: &impl GenericClient, sql: &str, params: Params<'_>) -> Step<Option<Row>> {
    let statement = client.prepare_cached(sql).await?;
    Ok(client.query_opt(&statement, params).await?)
}
