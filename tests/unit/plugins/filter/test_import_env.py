# Copyright: (c) 2026, ALCF operations
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The import_env_analysis filter, on small tables and on playbooks/import_env.yml's own table."""

from __future__ import annotations

import json
import os

import pytest
import yaml

from ansible.errors import AnsibleFilterError

from ansible_collections.alcf.mlflow_globus.plugins.filter.import_env import FilterModule, import_env_analysis

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
ROLES = ('oauth2_proxy', 'mlflow_globus', 'external_nginx')


def _load(*path):
    with open(os.path.join(REPO, *path), encoding='utf-8') as handle:
        return yaml.safe_load(handle)


PLAY_VARS = _load('playbooks', 'import_env.yml')[0]['vars']
TABLE = PLAY_VARS['_import_env_table']
DERIVED = PLAY_VARS['_import_env_derived']
ROLE_VARS = _load('roles', 'oauth2_proxy', 'vars', 'main.yml')
RULES = ROLE_VARS['_oauth2_proxy_extra_config_rules']
ROLE_DEFAULTS = {role: _load('roles', role, 'defaults', 'main.yml') for role in ROLES}
MESSAGES = ('carried', 'defaults', 'derived', 'unknown', 'review', 'missing', 'problems')


def analyse(env, table=None, derived=None, aliases=None, role_defaults=None):
    """The playbook's own table, derived list, rules and role defaults unless given."""
    return import_env_analysis(env, table=TABLE if table is None else table, derived=DERIVED if derived is None else derived,
                               rules=RULES, aliases=aliases, role_defaults=ROLE_DEFAULTS if role_defaults is None else role_defaults)


def one(kind, raw, **entry):
    """The analysis of one variable X through a one-entry table."""
    return analyse({'X': raw}, table=[dict({'var': 'v', 'kind': kind, 'names': ['X']}, **entry)], derived={})


def messages(result):
    """Every text the playbook prints or writes into main.yml's comments."""
    return json.dumps([result[key] for key in MESSAGES] + [result['settings'], result['extra_config'], result['environment']])


def test_registered():
    assert FilterModule().filters()['import_env_analysis'] is import_env_analysis


@pytest.mark.parametrize('kind, raw, value', [
    ('str', ' as is ', ' as is '),
    ('host', 'mlflow.example.org', 'mlflow.example.org'),
    ('host', 'https://MLflow.Example.org:8443/x', 'mlflow.example.org'),
    ('host', 'Mlflow.Example.ORG:443', 'mlflow.example.org'),
    ('host', 'nginx.example.org/path', 'nginx.example.org'),
    ('host', '10.0.0.7', '10.0.0.7'),
    ('port', '8081', 8081),
    ('port', '0.0.0.0:9000', 9000),
    ('port', ':9001', 9001),
    ('port', 'http://0.0.0.0:9002/', 9002),
    ('port', '00443', 443),
    ('int', '8', 8),
    ('bool', 'Yes', True),
    ('bool', 'on', True),
    ('bool', '1', True),
    ('bool', 'FALSE', False),
    ('bool', 'off', False),
    ('bool', '0', False),
    ('list', 'a, ,b,', ['a', 'b']),
    ('emails', 'B@x.org, a@x.org a@x.org', ['a@x.org', 'b@x.org']),
    ('uri', 'sqlite:////var/lib/mlflow/mlflow.db', 'sqlite:////var/lib/mlflow/mlflow.db'),
    ('uri', 'redis://user:@redis.example.org:6379', 'redis://user:@redis.example.org:6379'),
])
def test_each_kind_reads_its_value(kind, raw, value):
    result = one(kind, raw)
    assert result['settings'] == [{'var': 'v', 'value': value, 'from': 'X'}]
    assert result['carried'] == [{'env': 'X', 'to': 'v', 'text': 'X -> v'}]
    assert result['vault'] == [] and result['problems'] == []


@pytest.mark.parametrize('kind, raw', [
    ('secret', 'fake-secret-1'),
    ('uri', 'postgresql://mlflow:fake-secret-1@db.example.org:5432/mlflow'),
    # A port Python cannot read does not hide the password.
    ('uri', 'postgresql://mlflow:fake-secret-1@db.example.org:notaport/mlflow'),
    # Cannot be read at all, so it might hold one.
    ('uri', 'postgresql://mlflow:fake-secret-1@[db/mlflow'),
    # libpq's and SQLAlchemy's password in the query string.
    ('uri', 'postgresql://mlflow@db.example.org/mlflow?sslmode=require&password=fake-secret-1'),
])
def test_a_secret_goes_to_the_vault_and_main_yml_refers_to_it(kind, raw):
    result = one(kind, raw)
    assert result['settings'] == [{'var': 'v', 'value': '{{ vault_v }}', 'from': 'X'}]
    assert result['vault'] == [{'name': 'vault_v', 'value': raw, 'from': 'X'}]
    assert result['carried'][0]['text'] == 'X -> v (secret: in vault.yml)'
    assert 'fake-secret-1' not in messages(result)


def test_extra_and_env_entries_name_their_vault_variables():
    table = [{'extra': 'cookie_name', 'kind': 'secret', 'names': ['A']},
             {'env': 'AWS_SECRET_ACCESS_KEY', 'kind': 'secret', 'names': ['B']},
             {'env': 'AWS_DEFAULT_REGION', 'kind': 'str', 'names': ['C']}]
    result = analyse({'A': 'a', 'B': 'b', 'C': 'c'}, table=table, derived={})
    assert result['extra_config'] == [{'key': 'cookie_name', 'value': '{{ vault_oauth2_proxy_extra_config_cookie_name }}', 'from': 'A'}]
    assert result['environment'] == [
        {'key': 'AWS_SECRET_ACCESS_KEY', 'value': '{{ vault_mlflow_globus_environment_aws_secret_access_key }}', 'from': 'B'},
        {'key': 'AWS_DEFAULT_REGION', 'value': 'c', 'from': 'C'}]
    assert [item['name'] for item in result['vault']] == ['vault_oauth2_proxy_extra_config_cookie_name',
                                                          'vault_mlflow_globus_environment_aws_secret_access_key']
    assert [item['to'] for item in result['carried']] == ['oauth2_proxy_extra_config.cookie_name',
                                                          'mlflow_globus_environment.AWS_SECRET_ACCESS_KEY',
                                                          'mlflow_globus_environment.AWS_DEFAULT_REGION']
    assert result['settings'] == []


def test_hosts_go_to_hosts_yml_under_their_label():
    result = analyse({'VM_HOST': 'VM.example.org', 'NGINX_HOST': 'https://nginx.example.org/'})
    assert result['hosts'] == {'vm_host': 'vm.example.org', 'nginx_host': 'nginx.example.org'}
    assert [item['text'] for item in result['carried']] == ['VM_HOST -> hosts.yml (groups oauth2_proxy and mlflow)',
                                                            'NGINX_HOST -> hosts.yml (group external_nginx)']
    assert not any(item['var'] in ('vm_host', 'nginx_host') for item in result['settings'])


@pytest.mark.parametrize('kind, raw, expected', [
    ('host', 'not_a_host!', 'a host name or a URL'),
    ('host', 'https://', 'a host name or a URL'),
    ('host', 'http://[::1', 'a host name or a URL'),
    ('host', 'vm.example.org:abc', 'a host name or a URL'),
    ('host', 'vm.example.org\n', 'a host name or a URL'),
    ('port', 'abc', 'a port, or an address or URL ending in one'),
    ('port', '0.0.0.0:0', 'a port, or an address or URL ending in one'),
    ('port', '65536', 'a port, or an address or URL ending in one'),
    ('port', '8080\n', 'a port, or an address or URL ending in one'),
    ('int', '4x', 'a whole number'),
    ('int', '-1', 'a whole number'),
    ('int', '\u0664', 'a whole number'),
    ('bool', 'maybe', 'true or false'),
    ('bool', ' true', 'true or false'),
])
def test_a_value_its_kind_cannot_read_is_a_problem(kind, raw, expected):
    result = one(kind, raw)
    assert result['problems'] == ['X is %s, not %s' % (json.dumps(raw), expected)]
    assert result['settings'] == [] and result['carried'] == []


def test_a_bad_allowlist_is_a_problem_naming_each_bad_address():
    result = analyse({'OAUTH2_PROXY_ALLOWED_EMAILS': 'a@anl.gov, *@anl.gov'})
    assert result['problems'] == ["OAUTH2_PROXY_ALLOWED_EMAILS: invalid allowlist entry: #2 '*@anl.gov': wildcards are not "
                                  "allowed (oauth2-proxy compares whole addresses, so this would let nobody in; list each address)"]


def test_an_empty_allowlist_is_missing_not_written():
    result = analyse({'OAUTH2_PROXY_ALLOWED_EMAILS': ' , '})
    assert 'oauth2_proxy_allowed_emails (OAUTH2_PROXY_ALLOWED_EMAILS lists no address, so nobody could sign in)' in result['missing']
    assert not any(item['var'] == 'oauth2_proxy_allowed_emails' for item in result['settings'])


def test_the_first_name_wins_and_a_disagreeing_one_is_listed_for_review():
    result = analyse({'SERVER_NAME': 'b.example.org', 'PUBLIC_HOST': 'a.example.org', 'PUBLIC_URL': 'https://A.example.org/'})
    assert result['settings'][0] == {'var': 'mlflow_site_public_host', 'value': 'a.example.org', 'from': 'PUBLIC_HOST'}
    # PUBLIC_URL says the same host: no review.
    assert result['review'] == ['SERVER_NAME disagrees with PUBLIC_HOST ("b.example.org" against "a.example.org"); '
                                'PUBLIC_HOST was used for mlflow_site_public_host']


@pytest.mark.parametrize('env', [
    {'OAUTH2_PROXY_CLIENT_SECRET': 'fake-secret-1', 'GLOBUS_CLIENT_SECRET': 'fake-secret-2'},
    {'MLFLOW_BACKEND_STORE_URI': 'postgresql://u:fake-secret-1@db/x', 'BACKEND_STORE_URI': 'postgresql://u:fake-secret-2@db/x'},
    # Only the one not used holds a password: neither value is shown.
    {'MLFLOW_BACKEND_STORE_URI': 'sqlite:////srv/mlflow.db', 'BACKEND_STORE_URI': 'postgresql://u:fake-secret-2@db/x'},
])
def test_a_disagreeing_secret_is_listed_without_either_value(env):
    first, second = env
    result = analyse(env)
    assert [line for line in result['review'] if 'disagrees' in line] == [
        '%s disagrees with %s; %s was used for %s' % (second, first, first, result['carried'][0]['to'])]
    assert 'fake-secret' not in messages(result)


def test_a_value_equal_to_the_roles_default_is_not_written():
    env = {'OAUTH2_PROXY_HTTP_ADDRESS': '0.0.0.0:8081', 'MLFLOW_PORT': '8080', 'MLFLOW_SERVE_ARTIFACTS': 'yes',
           'OAUTH2_PROXY_EMAIL_DOMAINS': ' ', 'NGINX_HTTPS_PORT': '443', 'OAUTH2_PROXY_COOKIE_SAMESITE': 'lax',
           'MLFLOW_WORKERS': '5'}
    result = analyse(env)
    assert result['defaults'] == [
        {'env': 'OAUTH2_PROXY_HTTP_ADDRESS', 'to': 'oauth2_proxy_port'},
        {'env': 'OAUTH2_PROXY_EMAIL_DOMAINS', 'to': 'oauth2_proxy_email_domains'},
        {'env': 'OAUTH2_PROXY_COOKIE_SAMESITE', 'to': 'oauth2_proxy_extra_config.cookie_samesite'},
        {'env': 'MLFLOW_PORT', 'to': 'mlflow_globus_port'},
        {'env': 'MLFLOW_SERVE_ARTIFACTS', 'to': 'mlflow_globus_serve_artifacts'},
        {'env': 'NGINX_HTTPS_PORT', 'to': 'external_nginx_https_port'},
    ]
    assert [(item['var'], item['value']) for item in result['settings'] if item['from']] == [('mlflow_globus_workers', 5)]
    assert result['extra_config'] == []


def test_default_from_reads_the_roles_defaults_it_is_given():
    table = [{'var': 'mlflow_globus_port', 'kind': 'port', 'default_from': 'mlflow_globus', 'names': ['MLFLOW_PORT']}]
    moved = {'mlflow_globus': {'mlflow_globus_port': 9090}}
    assert analyse({'MLFLOW_PORT': '9090'}, table=table, derived={}, role_defaults=moved)['defaults'] == [
        {'env': 'MLFLOW_PORT', 'to': 'mlflow_globus_port'}]
    assert analyse({'MLFLOW_PORT': '8080'}, table=table, derived={}, role_defaults=moved)['settings'] == [
        {'var': 'mlflow_globus_port', 'value': 8080, 'from': 'MLFLOW_PORT'}]


def test_a_required_setting_the_env_lacks_is_missing_and_a_secret_gets_a_placeholder():
    result = analyse({})
    assert result['missing'] == [
        'mlflow_site_public_host (from MLFLOW_SITE_PUBLIC_HOST or PUBLIC_HOST or PUBLIC_HOSTNAME)',
        'hosts.yml (groups oauth2_proxy and mlflow) (from VM_HOST or VM_HOSTNAME or MLFLOW_VM_HOST)',
        'oauth2_proxy_client_id (from OAUTH2_PROXY_CLIENT_ID or GLOBUS_CLIENT_ID)',
        'oauth2_proxy_client_secret (from OAUTH2_PROXY_CLIENT_SECRET or GLOBUS_CLIENT_SECRET)',
        'oauth2_proxy_allowed_emails (from OAUTH2_PROXY_ALLOWED_EMAILS or ALLOWED_EMAILS)',
    ]
    assert result['settings'] == [{'var': 'oauth2_proxy_client_secret', 'value': '{{ vault_oauth2_proxy_client_secret }}', 'from': '',
                                   'note': 'not in the .env: put the secret into vault.yml as vault_oauth2_proxy_client_secret'}]
    assert result['vault'] == [{'name': 'vault_oauth2_proxy_client_secret', 'value': 'VAULT_PLACEHOLDER', 'from': '',
                                'note': 'not in the .env: replace the placeholder'}]
    assert result['carried'] == [] and result['hosts'] == {}


def test_a_required_setting_whose_value_is_a_problem_is_missing_too():
    result = analyse({'PUBLIC_HOST': 'not a host'})
    assert result['problems'] == ['PUBLIC_HOST is "not a host", not a host name or a URL']
    assert result['missing'][0] == 'mlflow_site_public_host (from MLFLOW_SITE_PUBLIC_HOST or PUBLIC_HOST or PUBLIC_HOSTNAME)'


def test_a_forbidden_value_is_listed_for_review_not_carried_over():
    result = analyse({'OAUTH2_PROXY_EMAIL_DOMAINS': 'anl.gov,*'})
    assert result['review'] == ['OAUTH2_PROXY_EMAIL_DOMAINS contains "*", which lets every Globus user in, whatever the allowlist '
                                'says (the collection never writes it); it was not carried over']
    assert not any(item['var'] == 'oauth2_proxy_email_domains' for item in result['settings'])
    assert result['carried'] == []


@pytest.mark.parametrize('redirect, review', [
    ('https://mlflow.example.org/oauth2/callback', False),
    (' HTTPS://MLflow.example.org/oauth2/callback// ', False),
    ('https://other.example.org/oauth2/callback', True),
])
def test_a_derived_variable_unlike_what_the_collection_uses_is_listed_for_review(redirect, review):
    result = analyse({'PUBLIC_HOST': 'mlflow.example.org', 'OAUTH2_PROXY_REDIRECT_URL': redirect})
    assert {'env': 'OAUTH2_PROXY_REDIRECT_URL', 'why': DERIVED['OAUTH2_PROXY_REDIRECT_URL']['why']} in result['derived']
    expected = 'OAUTH2_PROXY_REDIRECT_URL is %s in the .env, but %s' % (json.dumps(redirect), DERIVED['OAUTH2_PROXY_REDIRECT_URL']['why'])
    assert (expected in result['review']) is review


def test_the_expected_value_names_a_placeholder_without_a_public_host():
    derived = {'A': {'why': 'it is derived', 'expect': 'https://{host}/x'}, 'B': {'why': 'fixed', 'expect': 'true'},
               'C': {'why': 'no expectation'}}
    result = analyse({'A': 'https://a.example.org/x', 'B': 'True', 'C': 'anything'}, table=[], derived=derived)
    assert result['review'] == ['A is "https://a.example.org/x" in the .env, but it is derived']
    assert result['derived'] == [{'env': 'A', 'why': 'it is derived'}, {'env': 'B', 'why': 'fixed'}, {'env': 'C', 'why': 'no expectation'}]
    assert result['unknown'] == []
    assert analyse({'A': 'https://<public host>/x'}, table=[], derived=derived)['review'] == []


def test_an_option_the_oauth2_proxy_role_refuses_is_listed_for_review_not_carried_over():
    result = analyse({'OAUTH2_PROXY_SKIP_AUTH_ROUTES': 'GET=^/api/', 'OAUTH2_PROXY_LOGIN_URL': 'http://fake-secret-1@x.example.org/',
                      'OAUTH2_PROXY_BANNER': 'Sign in'})
    assert result['derived'] == [{'env': 'OAUTH2_PROXY_SKIP_AUTH_ROUTES', 'why': 'the oauth2_proxy role refuses it'},
                                 {'env': 'OAUTH2_PROXY_LOGIN_URL', 'why': 'the oauth2_proxy role refuses it'}]
    assert result['review'] == [
        'OAUTH2_PROXY_SKIP_AUTH_ROUTES is not carried over, the oauth2_proxy role refuses it: '
        'skip_auth_routes: lets matching requests through without sign-in; remove it',
        'OAUTH2_PROXY_LOGIN_URL is not carried over, the oauth2_proxy role refuses it: '
        'login_url: a plain http:// URL, readable and changeable on the way; use https://',
    ]
    assert [item['env'] for item in result['unknown']] == ['OAUTH2_PROXY_BANNER']
    assert result['extra_config'] == []
    assert 'fake-secret-1' not in messages(result)


def test_every_variable_not_understood_is_listed_with_a_hint_in_the_envs_order():
    result = analyse({'OTHER_TOKEN': 'fake-secret-1', 'OAUTH2_PROXY_BANNER': 'fake-secret-2', 'MLFLOW_TRACKING_X': 'fake-secret-3'})
    assert result['unknown'] == [
        {'env': 'OTHER_TOKEN', 'hint': 'unknown to this playbook'},
        {'env': 'OAUTH2_PROXY_BANNER',
         'hint': 'an oauth2-proxy option (banner): if still wanted, add it to oauth2_proxy_extra_config with a typed value'},
        {'env': 'MLFLOW_TRACKING_X',
         'hint': 'an MLflow setting: see ansible-doc -t role alcf.mlflow_globus.mlflow_globus '
                 '(mlflow_globus_environment passes variables to the server)'},
    ]
    assert 'fake-secret' not in messages(result)


def test_an_alias_is_named_with_the_tables_name_it_stands_for():
    # The playbook renames MY_SITE to PUBLIC_HOST before the analysis; the report says both.
    result = analyse({'PUBLIC_HOST': 'mlflow.example.org', 'OAUTH2_PROXY_CLIENT_ID': 'abc'}, aliases={'MY_SITE': 'PUBLIC_HOST'})
    assert [item['text'] for item in result['carried']] == ['MY_SITE (as PUBLIC_HOST) -> mlflow_site_public_host',
                                                            'OAUTH2_PROXY_CLIENT_ID -> oauth2_proxy_client_id']


def test_no_secret_value_appears_in_any_message():
    """A .env full of secrets, given twice and disagreeing, some beside problems: they reach vault.yml only."""
    env = {
        'PUBLIC_HOST': 'bad host', 'OAUTH2_PROXY_PORT': 'nope',
        'OAUTH2_PROXY_CLIENT_SECRET': 'fake-secret-01', 'GLOBUS_CLIENT_SECRET': 'fake-secret-02',
        'OAUTH2_PROXY_COOKIE_SECRET': 'fake-secret-03', 'OAUTH2_PROXY_REDIS_PASSWORD': 'fake-secret-04',
        'OAUTH2_PROXY_REDIS_CONNECTION_URL': 'rediss://u:fake-secret-05@redis.example.org:6379',
        'MLFLOW_BACKEND_STORE_URI': 'postgresql://u:fake-secret-06@db/x', 'BACKEND_STORE_URI': 'postgresql://u:fake-secret-07@db/x',
        'AWS_SECRET_ACCESS_KEY': 'fake-secret-08', 'AZURE_STORAGE_CONNECTION_STRING': 'fake-secret-09',
        'AZURE_STORAGE_ACCESS_KEY': 'fake-secret-10', 'OAUTH2_PROXY_CLIENT_SECRET_FILE': 'fake-secret-11',
        'OAUTH2_PROXY_JWT_KEY': 'fake-secret-12', 'OAUTH2_PROXY_SIGNATURE_KEY': 'fake-secret-13', 'SOME_TOKEN': 'fake-secret-14',
        'OAUTH2_PROXY_GITHUB_TOKEN': 'fake-secret-15', 'OAUTH2_PROXY_REDIS_SENTINEL_PASSWORD': 'fake-secret-16',
    }
    result = analyse(env)
    assert 'fake-secret' not in messages(result)
    assert result['problems'] and result['review'] and result['unknown']
    assert sorted(item['value'] for item in result['vault']) == sorted(
        [env[name] for name in ('OAUTH2_PROXY_CLIENT_SECRET', 'OAUTH2_PROXY_COOKIE_SECRET', 'OAUTH2_PROXY_REDIS_PASSWORD',
                                'OAUTH2_PROXY_REDIS_CONNECTION_URL', 'MLFLOW_BACKEND_STORE_URI', 'AWS_SECRET_ACCESS_KEY',
                                'AZURE_STORAGE_CONNECTION_STRING', 'AZURE_STORAGE_ACCESS_KEY')])


# --- Bad input: the filter names what is wrong, never a .env value --------------------------------

@pytest.mark.parametrize('env, table, fragment', [
    ('X=1', [], 'the input must be the .env as a mapping'),
    ({'X': 1}, [], ".env variable 'X' must be a string, not int"),
    ({}, {'var': 'v'}, 'table must be a list of entries'),
    ({}, ['v'], "each table entry must be a mapping, not 'v'"),
    ({}, [{'var': 'v', 'kind': 'str', 'names': ['X'], 'defualt': 1}], "has unknown keys ['defualt']"),
    ({}, [{'var': 'v', 'kind': 'str', 'names': 'X'}], 'needs names, a list of .env variable names'),
    ({}, [{'var': 'v', 'kind': 'float', 'names': ['X']}], "table entry ['X'] has kind 'float', not one of"),
    ({}, [{'kind': 'str', 'names': ['X']}], "table entry ['X'] says neither var, extra nor env"),
    ({}, [{'extra': 'e', 'hosts': True, 'kind': 'host', 'names': ['X']}], "table entry ['X'] has hosts but no var"),
    ({}, [{'var': 'v', 'kind': 'str', 'names': ['X'], 'default_from': 'nowhere'}],
     "table entry ['X']: default_from 'nowhere', but role_defaults has no v for that role"),
    ({}, [{'var': 'v', 'kind': 'str', 'names': ['X'], 'default_from': 'oauth2_proxy', 'default': 'd'}],
     "table entry ['X']: default_from needs a var and no default"),
])
def test_bad_input_is_refused_by_name(env, table, fragment):
    with pytest.raises(AnsibleFilterError, match='^import_env_analysis: ') as caught:
        analyse(env, table=table, derived={})
    assert fragment in str(caught.value)


def test_a_value_of_the_wrong_type_is_not_shown():
    with pytest.raises(AnsibleFilterError) as caught:
        analyse({'SECRET': ['fake-secret-1']}, table=[], derived={})
    assert 'fake-secret-1' not in str(caught.value)


@pytest.mark.parametrize('keyword, value, fragment', [
    ('derived', [], 'derived must be a mapping'),
    ('derived', {'A': 'text'}, "derived 'A' must be a mapping with a why text"),
    ('aliases', ['A'], 'aliases must be a mapping'),
    ('role_defaults', 'x', 'role_defaults must be a mapping'),
])
def test_bad_keywords_are_refused_by_name(keyword, value, fragment):
    arguments = dict({'table': [], 'derived': {}, 'rules': RULES}, **{keyword: value})
    with pytest.raises(AnsibleFilterError) as caught:
        import_env_analysis({}, **arguments)
    assert fragment in str(caught.value)


# --- The table's defaults: their one home is the roles' defaults ----------------------------------

# The kind's reading of a .env value has this type: a role default of another type could never be equal.
# (By name: a bool is an int to isinstance.)
KIND_TYPES = {'port': 'int', 'int': 'int', 'bool': 'bool', 'list': 'list', 'str': 'str'}


@pytest.mark.parametrize('entry', [entry for entry in TABLE if 'default_from' in entry], ids=lambda entry: entry['var'])
def test_default_from_names_a_role_default_of_the_kinds_type(entry):
    defaults = ROLE_DEFAULTS[entry['default_from']]
    assert entry['var'] in defaults
    assert type(defaults[entry['var']]).__name__ == KIND_TYPES[entry['kind']]


def test_no_literal_default_copies_a_role_variable():
    """A literal default is only for an option no role variable holds."""
    literal = [entry for entry in TABLE if 'default' in entry]
    assert literal, 'no literal default is left: drop this test and the two cases below'
    for entry in literal:
        assert not any(entry.get('var') in ROLE_DEFAULTS[role] for role in ROLES), entry
        assert 'var' not in entry, entry


def test_the_literal_defaults_are_the_ones_oauth2_proxy_runs_with():
    literal = {entry['extra']: entry['default'] for entry in TABLE if 'default' in entry}
    preset = ROLE_VARS['_oauth2_proxy_preset']
    assert set(literal) == {'cookie_name', 'cookie_samesite'}
    # The role's preset sets cookie_samesite ...
    assert literal['cookie_samesite'] == preset['cookie_samesite']
    # ... and no cookie name, so oauth2-proxy's own default (_oauth2_proxy) is the one in use.
    assert 'cookie_name' not in preset
    assert literal['cookie_name'] == '_oauth2_proxy'


def test_an_env_of_the_roles_defaults_writes_nothing():
    env = {}
    for entry in TABLE:
        if 'default_from' in entry:
            value = ROLE_DEFAULTS[entry['default_from']][entry['var']]
            env[entry['names'][0]] = ','.join(value) if isinstance(value, list) else str(value).lower() \
                if isinstance(value, bool) else str(value)
    result = analyse(env)
    assert [item['env'] for item in result['defaults']] == list(env)
    assert [item for item in result['settings'] if item['from']] == [] and result['carried'] == []
