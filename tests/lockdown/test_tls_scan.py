"""TLS as a real scanner sees it: sslscan (Debian's package) against the public nginx, its XML
output parsed. Only TLS 1.2 and 1.3, no weak suites, a strong key; nothing at all for another name."""
import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

WEAK = ('CBC', 'RC4', '3DES', 'DES-', 'NULL', 'EXPORT', 'EXP-', 'ANON', 'ADH', 'AECDH', 'MD5', 'SHA1')


def _scan(target, sni):
    if not shutil.which('sslscan'):
        pytest.fail('sslscan is not installed on the controller (tools/debian-packages.sh installs it)')
    out = subprocess.run(['sslscan', '--xml=-', '--no-colour', '--sni-name=%s' % sni, '%s:443' % target.address],
                         capture_output=True, text=True, timeout=300, check=True)
    return ET.fromstring(out.stdout[out.stdout.index('<?xml'):].encode()).find('ssltest')


def test_sslscan_public_host(target):
    test = _scan(target, target.public_host)
    protocols = {'%s%s' % (p.get('type'), p.get('version')): p.get('enabled') == '1' for p in test.iter('protocol')}
    ciphers = [(c.get('sslversion'), c.get('cipher'), int(c.get('bits')), c.get('strength')) for c in test.iter('cipher')]
    pk = test.find('certificates/certificate/pk')
    print('LOCKDOWN sslscan: protocols %s; suites %s; key %s %s bits %s; renegotiation %s; heartbleed %s'
          % (sorted(k for k, v in protocols.items() if v), ['%s %s' % cipher[:2] for cipher in ciphers],
             pk.get('type'), pk.get('curve_name', ''), pk.get('bits'),
             test.find('renegotiation').attrib, [h.get('vulnerable') for h in test.iter('heartbleed')]))
    assert protocols == {'ssl2': False, 'ssl3': False, 'tls1.0': False, 'tls1.1': False, 'tls1.2': True,
                         'tls1.3': True}, protocols
    assert ciphers, 'no cipher suite found'
    assert {cipher[0] for cipher in ciphers} == {'TLSv1.2', 'TLSv1.3'}, ciphers
    weak = [c for c in ciphers if any(w in c[1].upper() for w in WEAK) or c[2] < 128
            or c[3] not in ('strong', 'acceptable')]
    assert not weak, weak
    # TLS 1.2 suites: forward secret (ECDHE) and AEAD only.
    assert all(c[1].startswith('ECDHE-') and ('GCM' in c[1] or 'CHACHA20' in c[1]) for c in ciphers if c[0] == 'TLSv1.2'), ciphers
    assert test.find('renegotiation').get('supported') == '0'
    assert all(h.get('vulnerable') == '0' for h in test.iter('heartbleed'))
    # ECDSA P-256 = 128-bit security (RSA 3072 equivalent); RSA keys must be 2048 bits at least.
    assert not pk.get('error') == 'true'
    assert (pk.get('type') == 'EC' and int(pk.get('bits')) >= 128) or (pk.get('type') == 'RSA' and int(pk.get('bits')) >= 2048), pk.attrib
    assert test.find('certificates/certificate/expired').text == 'false'


@pytest.mark.parametrize('sni', ['evil.example', 'www.evil.example'])
def test_sslscan_foreign_name_gets_nothing(target, sni):
    test = _scan(target, sni)
    enabled = [p.attrib for p in test.iter('protocol') if p.get('enabled') == '1']
    ciphers = [c.get('cipher') for c in test.iter('cipher')]
    print('LOCKDOWN sslscan %s: protocols %s, suites %s, certificates %d' % (sni, enabled, ciphers, len(list(test.iter('certificate')))))
    assert not ciphers, ciphers
    assert not list(test.iter('certificate'))
