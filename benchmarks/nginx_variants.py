"""Variants of the deployed nginx site, for benchmarks/pool.py --variants: each one is the site as the
role wrote it with one thing taken away or added, so that its cost shows in the same run as the rest.

Each variant is a text transform of the deployed file (/etc/nginx/conf.d/<site>.conf): it must match
what it edits, or it stops the run rather than measure the unchanged site under another name. The file
is put back (nginx -t, reload) when the run ends; a copy stays in the container beside load.py.
"""
import re

# The auth cache under test, as recommended for site.conf.j2 (the zone's name is the site's).
# Its files hold the key, i.e. the session cookie or bearer token in clear: on tmpfs (/run), never on a
# disk that backups or images copy, and dropped 30 s after their last use.
AUTH_CACHE_PATH = ('proxy_cache_path /run/nginx_{site}_auth levels=1:2 keys_zone={site}_auth:1m '
                   'max_size=16m inactive=30s use_temp_path=off;\n')
AUTH_CACHE = '''        # Cache oauth2-proxy's 202 for a few seconds per credential (the whole Cookie and Authorization
        # headers are the key): a removed user is refused at most {ttl} later. 401/403 are never cached,
        # nor a 202 that refreshes the session (nginx does not cache a response with Set-Cookie).
        proxy_cache {site}_auth;
        proxy_cache_key "$http_authorization|$http_cookie";
        proxy_cache_valid 202 {ttl};
'''


def _sub(pattern, replacement, text, count=0):
    new, found = re.subn(pattern, replacement, text, count=count, flags=re.M)
    if not found:
        raise ValueError('variant does not apply: %r not found in the deployed site' % pattern)
    return new


def as_deployed(text, _ctx):
    return text


def no_tls(text, ctx):
    """A plain-HTTP listener on loopback in the site's server, beside its TLS one (same locations)."""
    return _sub(r'^(\s*listen 127\.0\.0\.1:443 ssl[^;]*;)$', r'\1\n    listen 127.0.0.1:%d;' % ctx['plain_port'], text, 1)


def no_auth_request(text, ctx):
    """No subrequest: nginx names the user itself, as oauth2-proxy would have (a fixed email)."""
    email = ctx['email']
    return _sub(r'^(\s*)auth_request /oauth2/auth;$',
                r'\1set $auth_email "%s";\n\1set $auth_user "%s";' % (email, email), text)


def no_upstream_keepalive(text, _ctx):
    return _sub(r'^\s*keepalive \d+;\n', '', text)


def no_auth_keepalive(text, _ctx):
    """Keep-alive to MLflow only: every auth subrequest opens a new connection to oauth2-proxy."""
    return _sub(r'(upstream \w+_oauth2_proxy \{[^}]*?)\n\s*keepalive \d+;', r'\1', text)


def auth_cache(text, ctx):
    ttl = ctx.get('auth_cache_ttl', '5s')
    site = re.search(r'proxy_pass http://(\w+)_oauth2_proxy;', text).group(1)
    block = AUTH_CACHE.format(site=site, ttl=ttl)
    text = AUTH_CACHE_PATH.format(site=site) + text
    return _sub(r'^(\s*location = /oauth2/auth \{\n\s*internal;\n)', lambda m: m.group(1) + block, text, 1)


def access_log_off(text, _ctx):
    """No access log line for the site's requests (the main config writes one per request)."""
    return _sub(r'^(    server_name (?!_)[^;]+;)$', r'\1\n    access_log off;', text)


def inline_pools(text, ctx):
    """The upstream pools, written into the site in place of their include (the role now keeps them in
    a file of their own, /etc/nginx/alcf-mlflow-globus/<site>-pools.conf): a variant then edits and
    replaces one file only, and the pools' file is never touched."""
    return re.sub(r'^include (/etc/nginx/alcf-mlflow-globus/\S+-pools\.conf);$',
                  lambda m: ctx['read'](m.group(1)), text, flags=re.M)


def compose(names):
    """'a+b': the transforms of a, then b; the chain is reached over plain HTTP if any of them says so."""
    steps = [VARIANTS[name] for name in names.split('+')]

    def transform(text, ctx):
        text = inline_pools(text, ctx)
        for step, _url in steps:
            text = step(text, ctx)
        return text
    return transform, next((url for _step, url in steps if url), None)


# name: (transform, how load.py reaches the chain: None = the TLS site as deployed, 'plain' = no_tls's port)
VARIANTS = {
    'as-deployed': (as_deployed, None),
    'no-tls': (no_tls, 'plain'),
    'no-auth-request': (no_auth_request, None),
    'auth-cache': (auth_cache, None),
    'no-upstream-keepalive': (no_upstream_keepalive, None),
    'no-auth-keepalive': (no_auth_keepalive, None),
    'access-log-off': (access_log_off, None),
}
