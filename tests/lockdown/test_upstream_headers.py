"""What reaches MLflow and oauth2-proxy, read off the wire on the MLflow VM (tcpdump; nginx to the
services is plain HTTP): a signed-in request with forged identity headers reaches MLflow without
them, without the session cookie and without the bearer token; oauth2-proxy gets nginx's own
X-Forwarded-Uri, never the client's."""
import uuid

SEARCH = '/api/2.0/mlflow/experiments/search?max_results=1'
FORGED = ['X-Auth-Request-User', 'X-Auth-Request-Email', 'X-Auth-Request-Preferred-Username', 'X-Auth-Request-Groups',
          'X-Auth-Request-Access-Token', 'Remote-User', 'X-Remote-User', 'X-Forwarded-User', 'X-Forwarded-Email',
          'X-Forwarded-Preferred-Username', 'X-Forwarded-Groups', 'X-Forwarded-Access-Token', 'X-Forwarded-Uri',
          'X-Original-URL', 'X-Rewrite-URL', 'Forwarded', 'X-Forwarded-Prefix', 'X-Forwarded-Host']


def test_forged_headers_cookie_and_token_never_reach_mlflow(target, session_cookie, bearer, capture):
    mark = 'forged%s' % uuid.uuid4().hex
    forged = [(name, '%s-%s' % (mark, name.lower())) for name in FORGED]
    with capture:
        by_cookie = target.request('GET', SEARCH + '&lockdown=' + mark + 'cookie', headers=forged + [('Cookie', session_cookie)])
        by_bearer = target.request('GET', SEARCH + '&lockdown=' + mark + 'bearer',
                                   headers=forged + [('Authorization', 'Bearer ' + bearer)])
        start = target.request('GET', '/oauth2/start?rd=%2F', headers=forged)
    assert by_cookie.status == 200, by_cookie
    assert by_bearer.status == 200, by_bearer
    assert start.status == 302, start
    to_mlflow = capture.payload(8080)
    to_oauth2_proxy = capture.payload(8081)
    session_value = session_cookie.split('=', 1)[1].split(';')[0]
    # The capture saw both requests arrive at MLflow, and the credentials arrive at oauth2-proxy.
    assert (mark + 'cookie').encode() in to_mlflow and (mark + 'bearer').encode() in to_mlflow, to_mlflow[-3000:]
    assert session_value[:40].encode() in to_oauth2_proxy
    assert bearer[:40].encode() in to_oauth2_proxy
    # ... but MLflow got no forged header, no cookie, no token; it got nginx's identity headers.
    for name, value in forged:
        assert value.encode() not in to_mlflow, '%s reached MLflow' % name
        assert value.encode() not in to_oauth2_proxy, '%s reached oauth2-proxy' % name
    assert session_value[:40].encode() not in to_mlflow
    assert bearer[:40].encode() not in to_mlflow
    assert b'\nCookie:' not in to_mlflow.replace(b'\r\n', b'\n') and b'\nAuthorization:' not in to_mlflow.replace(b'\r\n', b'\n')
    assert ('X-Forwarded-Email: %s' % target.user).encode() in to_mlflow
    assert ('X-Forwarded-Uri: /oauth2/start?rd=%2F').encode() in to_oauth2_proxy
    print('LOCKDOWN capture: %d bytes to MLflow, %d to oauth2-proxy; %d forged headers, the cookie and the token absent at MLflow'
          % (len(to_mlflow), len(to_oauth2_proxy), len(forged)))
