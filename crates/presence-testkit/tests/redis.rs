//! Proves the Redis the testkit starts: a single server answers and comes back on its
//! port after a kill, and a local Redis Cluster of three masters holds every slot and
//! says `cluster_state:ok`. Without `redis-server` these print "skipped", except under
//! `CI=true`, where that is a failure.

use presence_testkit::{redis_server_available, Redis, RedisCluster};

#[tokio::test]
async fn a_killed_redis_starts_again_on_its_port() {
    if !redis_server_available("a_killed_redis_starts_again_on_its_port") {
        return;
    }
    let mut redis = Redis::start().await.expect("redis starts");
    assert_eq!(redis.command(&["PING"]).await.expect("PING"), "PONG");
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{}/", redis.port()));
    let port = redis.port();
    redis.kill().await;
    assert!(!redis.is_running());
    let again = Redis::start_on(port).await.expect("redis starts again");
    assert_eq!(again.command(&["SET", "k", "v"]).await.expect("SET"), "OK");
    assert_eq!(again.command(&["GET", "k"]).await.expect("GET"), "v");
}

#[tokio::test]
async fn three_masters_form_a_cluster_that_says_ok() {
    if !redis_server_available("three_masters_form_a_cluster_that_says_ok") {
        return;
    }
    let cluster = RedisCluster::start(3).await.expect("cluster starts");
    assert_eq!(cluster.masters().len(), 3);
    let info = cluster.info().await.expect("cluster info");
    assert!(info.contains("cluster_state:ok"), "{info}");
    assert!(info.contains("cluster_slots_assigned:16384"), "{info}");
    assert!(info.contains("cluster_known_nodes:3"), "{info}");
    for port in cluster.ports() {
        assert!(port.checked_add(10_000).is_some(), "bus port of {port}");
    }
}
