#!/usr/bin/env python3
# A browser's sign-in, over HTTP, without following redirects, for the molecule scenario:
#   GET  <base>/oauth2/start?rd=/         -> 302 to the provider, CSRF cookie
#   POST <Location> with form sub=<sub>   -> 302 to the redirect URL with code and state
#   GET  <base>/oauth2/callback?<query>   -> 302 and a session cookie (allowed) or 403 (refused)
# Prints what each step answered as JSON; the playbook asserts on it. oauth2-proxy's cookies are
# Secure, which an HTTP client may not send over plain HTTP, so they are carried by hand here.
# Usage: sign_in.py BASE_URL SUB
import http.client
import json
import sys
import urllib.parse


def request(method, url, headers=None, body=None):
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=30)
    target = parts.path + ('?' + parts.query if parts.query else '')
    conn.request(method, target, body=body, headers=headers or {})
    resp = conn.getresponse()
    resp.read()
    cookies = {}
    for header in resp.msg.get_all('Set-Cookie') or []:
        name, _, rest = header.partition('=')
        value = rest.split(';', 1)[0]
        cookies[name.strip()] = value
    conn.close()
    return {'status': resp.status, 'location': resp.getheader('Location', ''), 'cookies': cookies}


def cookie_header(cookies):
    return '; '.join('%s=%s' % item for item in cookies.items() if item[1])


def main(base, sub):
    start = request('GET', base + '/oauth2/start?rd=%2F')
    authorize = request('POST', start['location'], {'Content-Type': 'application/x-www-form-urlencoded'},
                        urllib.parse.urlencode({'sub': sub}))
    query = urllib.parse.urlsplit(authorize['location']).query
    callback = request('GET', base + '/oauth2/callback?' + query, {'Cookie': cookie_header(start['cookies'])})
    session = {name: value for name, value in callback['cookies'].items()
               if (name == '_oauth2_proxy' or name.startswith('_oauth2_proxy_') and name[14:].isdigit()) and value}
    print(json.dumps({
        'start': {'status': start['status'], 'location': start['location'], 'cookies': sorted(start['cookies'])},
        'authorize': {'status': authorize['status'], 'location': authorize['location']},
        'callback': {'status': callback['status'], 'location': callback['location'],
                     'cookies': sorted(callback['cookies'])},
        'cookie': cookie_header(session),
    }))


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
