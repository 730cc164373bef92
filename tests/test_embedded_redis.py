def test_redis(redis_client):
    redis_client.set("a", 1)
    assert redis_client.get("a") == b"1"
