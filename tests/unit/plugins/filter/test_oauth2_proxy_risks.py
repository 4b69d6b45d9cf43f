# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The oauth2_proxy_risks filter, with the role's own rules (roles/oauth2_proxy/vars/main.yml)."""

from __future__ import annotations

import os

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.alcf.mlflow_globus.plugins.filter.oauth2_proxy_risks import (
    FilterModule,
    oauth2_proxy_risks,
)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
with open(os.path.join(REPO, 'roles', 'oauth2_proxy', 'vars', 'main.yml'), encoding='utf-8') as _handle:
    RULES = yaml.safe_load(_handle)['_oauth2_proxy_extra_config_rules']


def risks(config, allow_insecure=False):
    return oauth2_proxy_risks(config, RULES, allow_insecure=allow_insecure)


def test_registered():
    assert FilterModule().filters()['oauth2_proxy_risks'] is oauth2_proxy_risks


@pytest.mark.parametrize('config', [
    {},
    {'banner': 'x', 'footer': '-', 'cookie_csrf_per_request': True, 'cookie_csrf_expire': '5m0s'},
    {'cookie_secure': True, 'cookie_httponly': 'true', 'cookie_samesite': 'Strict', 'skip_auth_strip_headers': True},
    {'cookie_samesite': 'lax'},
    {'metrics_address': '127.0.0.1:9100'},
    {'metrics_address': '[::1]:9100'},
    {'metrics_address': 'localhost:9100'},
    {'metrics_address': ''},
    # Stricter than oauth2-proxy's default (true): needs no unlock.
    {'insecure_oidc_skip_nonce': False},
    {'ssl_insecure_skip_verify': 'false'},
    {'login_url': 'https://auth.globus.org/v2/oauth2/authorize'},
])
def test_accepted(config):
    assert risks(config) == {'refused': [], 'unlocked': [], 'keys': []}


@pytest.mark.parametrize('config, fragment', [
    ({'skip_auth_routes': ['GET=^/']}, 'skip_auth_routes: lets matching requests through without sign-in'),
    ({'skip_auth_regex': ['^/']}, 'skip_auth_regex: '),
    ({'skip_auth_preflight': True}, 'skip_auth_preflight: '),
    ({'trusted_ips': ['10.0.0.0/8']}, 'trusted_ips: '),
    ({'ping_path': '/oauth2/auth'}, 'ping_path: '),
    ({'ready_path': '/oauth2/auth'}, 'ready_path: '),
    ({'ping_user_agent': 'x'}, 'ping_user_agent: '),
    ({'gcp_healthchecks': True}, 'gcp_healthchecks: '),
    ({'upstreams': ['static://200']}, 'upstreams: '),
    ({'ssl_upstream_insecure_skip_verify': True}, 'ssl_upstream_insecure_skip_verify: '),
    ({'whitelist_domains': ['.x']}, 'whitelist_domains: use oauth2_proxy_whitelist_domains'),
    ({'extra_jwt_issuers': ['https://i=a']}, 'extra_jwt_issuers: '),
    ({'oidc_extra_audiences': ['a']}, 'oidc_extra_audiences: '),
    ({'oidc_audience_claims': ['azp']}, 'oidc_audience_claims: '),
    ({'oidc_email_claim': 'sub'}, 'oidc_email_claim: '),
    ({'user_id_claim': 'sub'}, 'user_id_claim: '),
    ({'oidc_public_key_files': ['/k']}, 'oidc_public_key_files: '),
    ({'htpasswd_file': '/h'}, 'htpasswd_file: '),
    ({'htpasswd_user_groups': ['g']}, 'htpasswd_user_groups: '),
    ({'cookie_domains': ['.x']}, 'cookie_domains: '),
    ({'proxy_prefix': '/p'}, 'proxy_prefix: '),
    ({'https_address': ':443'}, 'https_address: '),
    ({'provider': 'github'}, 'provider: '),
    ({'pass_authorization_header': True}, 'pass_authorization_header: '),
    ({'set_authorization_header': True}, 'set_authorization_header: '),
    ({'pass_access_token': True}, 'pass_access_token: '),
    ({'pass_basic_auth': True}, 'pass_basic_auth: '),
    ({'set_basic_auth': True}, 'set_basic_auth: '),
    ({'cookie_secure': False}, 'cookie_secure = false: '),
    ({'cookie_secure': 'no'}, "cookie_secure = 'no': "),
    ({'cookie_httponly': False}, 'cookie_httponly = false: '),
    ({'cookie_samesite': 'none'}, "cookie_samesite = 'none': "),
    ({'cookie_samesite': ''}, "cookie_samesite = '': "),
    ({'skip_auth_strip_headers': False}, 'skip_auth_strip_headers = false: '),
    ({'metrics_address': ':9100'}, "metrics_address = ':9100': /metrics needs no sign-in"),
    ({'metrics_address': '0.0.0.0:9100'}, 'metrics_address = '),
    ({'metrics_secure_address': '10.0.0.1:9101'}, 'metrics_secure_address = '),
    ({'metrics_address': 9100}, 'metrics_address = 9100'),
])
def test_refused(config, fragment):
    result = risks(config)
    assert len(result['refused']) == 1
    assert fragment in result['refused'][0]
    assert result['keys'] == list(config)
    # Refused whatever the unlock says.
    assert fragment in risks(config, allow_insecure=True)['refused'][0]


@pytest.mark.parametrize('key', ['basic_auth_password', 'jwt_key', 'signature_key', 'redis_sentinel_password',
                                 'github_token'])
def test_secrets_are_refused_without_their_value(key):
    result = risks({key: 'do-not-show-42'})
    assert result['refused'] == ['%s: a secret in the configuration file; remove it' % key]
    assert 'do-not-show-42' not in repr(result)


def test_reserved_keys_in_one_message_first():
    result = risks({'client_secret': 'do-not-show-42', 'skip_auth_regex': ['^/'],
                    'oidc_issuer_url': 'https://x'})
    assert result['refused'][0].startswith(
        "Set through role variables instead: ['client_secret', 'oidc_issuer_url'] (client_secret: use "
        "oauth2_proxy_client_secret")
    assert 'oidc_issuer_url: use oauth2_proxy_oidc_issuer_url' in result['refused'][0]
    assert result['refused'][1].startswith('skip_auth_regex: ')
    assert len(result['refused']) == 2
    assert 'do-not-show-42' not in repr(result)


@pytest.mark.parametrize('config, fragment', [
    ({'ssl_insecure_skip_verify': True}, 'ssl_insecure_skip_verify: skips TLS certificate checks'),
    ({'insecure_oidc_skip_issuer_verification': True}, 'insecure_oidc_skip_issuer_verification: '),
    ({'insecure_oidc_allow_unverified_email': 'true'}, 'insecure_oidc_allow_unverified_email: '),
    ({'insecure_oidc_skip_nonce': True}, 'insecure_oidc_skip_nonce: '),
    ({'redis_insecure_skip_tls_verify': True}, 'redis_insecure_skip_tls_verify: '),
    ({'show_debug_on_error': True}, 'show_debug_on_error: '),
    ({'oidc_jwks_url': 'http://idp/jwks'}, 'oidc_jwks_url: a plain http:// URL'),
    ({'provider_ca_files': ['/ca'], 'login_url': 'HTTP://user:pw@idp/authorize'}, 'login_url: a plain http:// URL'),
])
def test_unlock_only(config, fragment):
    refused = risks(config)
    assert [m for m in refused['refused'] if fragment in m]
    assert refused['unlocked'] == []
    unlocked = risks(config, allow_insecure=True)
    assert unlocked['refused'] == []
    assert [m for m in unlocked['unlocked'] if fragment in m]
    assert 'pw@' not in repr(refused) + repr(unlocked)


@pytest.mark.parametrize('config, rules', [([], RULES), ('x', RULES), ({}, []), ({}, None)])
def test_bad_arguments(config, rules):
    with pytest.raises(AnsibleFilterError, match='oauth2_proxy_risks: '):
        oauth2_proxy_risks(config, rules)
