"""The checklist's "real user flow" in Debian's Chromium, driven by Playwright: open the public
URL, get sent to the provider, sign in, and see the MLflow UI with an experiment in it."""
import pytest
import requests
from playwright.sync_api import sync_playwright

from conftest import sign_in

CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
                 '--disable-sync', '--no-first-run', '--disable-quic']


@pytest.fixture(scope='module')
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path='/usr/bin/chromium', headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope='module')
def experiment(site):
    """An experiment made through the API by a signed-in user, for the UI to show."""
    s = sign_in(site, site['allowed'][0])
    name = 'e2e-browser'
    r = s.get(site['public_url'] + '/api/2.0/mlflow/experiments/get-by-name', params={'experiment_name': name})
    if r.status_code != 200:
        r = s.post(site['public_url'] + '/api/2.0/mlflow/experiments/create', json={'name': name})
        assert r.status_code == 200, r.text
    return name


def test_allowed_user_signs_in_and_sees_mlflow(site, browser, experiment, output_dir):
    page = browser.new_page(ignore_https_errors=True)
    page.goto(site['public_url'] + '/')
    page.wait_for_url(site['issuer'] + '/oauth2/authorize*')
    page.screenshot(path=str(output_dir / 'browser-1-provider-sign-in.png'))
    page.fill('input[name=sub]', site['allowed'][0])
    page.click('button[type=submit]:has-text("Authorize")')
    page.wait_for_url(site['public_url'] + '/**')
    page.get_by_text(experiment).first.wait_for(timeout=60000)
    assert 'MLflow' in page.title()
    page.screenshot(path=str(output_dir / 'browser-2-mlflow-ui.png'), full_page=True)
    page.close()


def test_user_not_on_the_list_is_refused_in_the_browser(site, browser, output_dir):
    page = browser.new_page(ignore_https_errors=True)
    page.goto(site['public_url'] + '/')
    page.wait_for_url(site['issuer'] + '/oauth2/authorize*')
    page.fill('input[name=sub]', 'mallory@example.org')
    with page.expect_response(lambda r: '/oauth2/callback' in r.url) as callback:
        page.click('button[type=submit]:has-text("Authorize")')
    assert callback.value.status == 403
    # The response is in before the page has drawn it: a screenshot taken then fails with
    # "Unable to capture screenshot" (seen once on a fresh machine).
    page.wait_for_url('**/oauth2/callback*')
    page.wait_for_load_state('load')
    page.screenshot(path=str(output_dir / 'browser-3-refused.png'))
    # oauth2-proxy's own error page, not MLflow's UI.
    text = page.inner_text('body')
    assert '403' in text and 'Forbidden' in text, text
    assert 'MLflow' not in page.title(), page.title()
    page.close()


def test_a_second_user_sees_the_others_work_and_is_refused_a_delete(site, browser, output_dir):
    """Identity in the UI: bob, signed in, is named in the sidebar, sees alice's experiment beside his own,
    and MLflow refuses (403) and says so when he deletes hers."""
    alice, bob = site['allowed'][:2]
    names = {}
    for who in (alice, bob):
        names[who] = '%s-ui-study' % who.split('@')[0]
        s = sign_in(site, who)
        if s.get(site['public_url'] + '/api/2.0/mlflow/experiments/get-by-name',
                 params={'experiment_name': names[who]}).status_code != 200:
            assert s.post(site['public_url'] + '/api/2.0/mlflow/experiments/create',
                          json={'name': names[who]}).status_code == 200
    page = browser.new_page(ignore_https_errors=True, viewport={'width': 1400, 'height': 900})
    page.goto(site['public_url'] + '/')
    page.wait_for_url(site['issuer'] + '/oauth2/authorize*')
    page.fill('input[name=sub]', bob)
    page.click('button[type=submit]:has-text("Authorize")')
    page.wait_for_url(site['public_url'] + '/**')
    page.goto(site['public_url'] + '/#/experiments')
    page.get_by_text(names[alice]).first.wait_for(timeout=60000)
    page.get_by_text(names[bob]).first.wait_for(timeout=60000)
    page.get_by_text(bob).first.wait_for(timeout=10000)  # the signed-in user, in the sidebar
    page.get_by_role('row').filter(has_text=names[alice]).first.get_by_role('checkbox').first.check()
    page.get_by_role('button', name='Delete').first.click()
    with page.expect_response(lambda r: 'experiments/delete' in r.url) as deleted:
        page.get_by_role('dialog').get_by_role('button', name='Delete').click()
    assert deleted.value.status == 403
    page.get_by_text('Permission denied').first.wait_for(timeout=10000)
    page.wait_for_timeout(1500)  # the dialog fades out, the notice stays
    page.screenshot(path=str(output_dir / 'browser-4-identity-403.png'))
    page.close()
    still = sign_in(site, alice).get(site['public_url'] + '/api/2.0/mlflow/experiments/get-by-name',
                                     params={'experiment_name': names[alice]})
    assert still.status_code == 200 and still.json()['experiment']['lifecycle_stage'] == 'active', still.text
