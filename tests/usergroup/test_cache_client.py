"""The Redis cache backend keeps one client per server (usergroup/cache.py): Django's builds a
new one, at about 80 µs of CPU, for every cache call."""

from usergroup.cache import RedisCache


def test_the_redis_cache_keeps_one_client_per_server():
    cache = RedisCache("redis://127.0.0.1:1/0", {})  # building a client connects nowhere
    client = cache._cache.get_client()
    assert client is cache._cache.get_client() is cache._cache.get_client(write=True)
    assert client.connection_pool.connection_kwargs["port"] == 1


def test_each_server_has_its_own_client():
    cache = RedisCache("redis://127.0.0.1:1/0,redis://127.0.0.1:2/0", {})  # a primary, a replica
    primary, replica = cache._cache.get_client(write=True), cache._cache.get_client()
    assert primary is not replica
    assert (
        primary.connection_pool.connection_kwargs["port"],
        replica.connection_pool.connection_kwargs["port"],
    ) == (1, 2)
