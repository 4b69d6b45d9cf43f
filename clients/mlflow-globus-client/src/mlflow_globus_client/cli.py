"""mlflow-globus-login: set up the token file once, get the first ID token, say what to export.

  mlflow-globus-login client-credentials --issuer https://auth.globus.org --client-id ID \\
      --client-secret-file ~/.config/mlflow-globus/client-secret
  mlflow-globus-login command -- /path/to/print-id-token --for training
"""

from __future__ import annotations

import argparse
import sys
import time

from mlflow_globus_client import tokens


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='mlflow-globus-login', description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--token-file', help='default: $MLFLOW_GLOBUS_TOKEN_FILE or %s' % tokens.DEFAULT_TOKEN_FILE)
    sources = parser.add_subparsers(dest='source', required=True)
    credentials = sources.add_parser('client-credentials', help='a confidential client (service identity)')
    credentials.add_argument('--issuer', default='https://auth.globus.org')
    credentials.add_argument('--client-id', required=True)
    credentials.add_argument('--client-secret-file', required=True, help='a file holding the secret (mode 0600)')
    credentials.add_argument('--scope', default='openid email profile')
    command = sources.add_parser('command', help='a command that prints a fresh ID token')
    command.add_argument('command', nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    if args.source == 'command':
        argv_ = args.command[1:] if args.command[:1] == ['--'] else args.command
        if not argv_:
            parser.error('command: give the command after --')
        settings = {'source': 'command', 'command': argv_}
    else:
        settings = {'source': 'client_credentials', 'issuer': args.issuer, 'client_id': args.client_id,
                    'client_secret_file': args.client_secret_file, 'scope': args.scope}
    path = tokens.token_file_path(args.token_file)
    try:
        token = tokens.fetch_id_token(settings)
    except (tokens.TokenError, OSError) as exc:
        print('mlflow-globus-login: %s' % exc, file=sys.stderr)
        return 1
    claims = tokens.jwt_claims(token)
    tokens.write_token_file(path, dict(settings, id_token=token, expires_at=claims.get('exp')))
    print('signed in as %s; this token ends in %d s and is renewed before that by every MLflow call'
          % (claims.get('email') or claims.get('sub'), int(claims.get('exp', 0) - time.time())))
    print('token file: %s' % path)
    print('export MLFLOW_TRACKING_AUTH=globus%s'
          % ('' if args.token_file is None else '\nexport MLFLOW_GLOBUS_TOKEN_FILE=%s' % path))
    return 0


if __name__ == '__main__':
    sys.exit(main())
