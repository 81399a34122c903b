"""Read support email from a mailbox into tickets: an mbox file, a Maildir folder, or an IMAP folder.

    manage.py read_mailbox --workspace acme var/mail/support.mbox
    manage.py read_mailbox --workspace acme var/mail/Maildir --kind maildir
    manage.py read_mailbox --workspace acme --imap-host imap.example.com --imap-user support@example.com \
        --imap-password-env SUPPORT_IMAP_PASSWORD [--imap-folder INBOX]

Re-reading the same mailbox is safe: messages already stored (same Message-ID) are skipped. With IMAP, only
unseen messages are fetched and each is flagged as seen once it is stored.
"""

import imaplib
import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django_scopes import scope, scopes_disabled

from crm.models import Workspace
from support.inbound import inbound_email_process, mailbox_messages, parse_message


class Command(BaseCommand):
    help = "Turn the messages of an mbox file, Maildir folder or IMAP folder into support tickets."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", required=True, help="Workspace slug")
        parser.add_argument("path", nargs="?", help="mbox file or Maildir directory")
        parser.add_argument("--kind", choices=["auto", "mbox", "maildir"], default="auto")
        parser.add_argument("--imap-host")
        parser.add_argument("--imap-port", type=int, default=993)
        parser.add_argument("--imap-user")
        parser.add_argument(
            "--imap-password-env",
            default="SUPPORT_IMAP_PASSWORD",
            help="Name of the environment variable holding the IMAP password",
        )
        parser.add_argument("--imap-folder", default="INBOX")

    def handle(self, *args, **options):
        with scopes_disabled():
            workspace = Workspace.objects.filter(slug=options["workspace"]).first()
        if workspace is None:
            raise CommandError(f"No workspace with slug {options['workspace']!r}")
        counts = {"new tickets": 0, "replies": 0, "duplicates": 0, "ignored": 0}
        with scope(workspace=workspace):
            if options["imap_host"]:
                self._imap(workspace, options, counts)
            else:
                if not options["path"]:
                    raise CommandError("Give a mailbox path or --imap-host")
                path = Path(options["path"])
                if not path.exists():
                    raise CommandError(f"{path} does not exist")
                for key, message in mailbox_messages(path, kind=options["kind"]):
                    self._store(workspace, message, counts, label=str(key))
        self.stdout.write(", ".join(f"{value} {name}" for name, value in counts.items()))

    def _store(self, workspace, message, counts, *, label: str) -> None:
        try:
            inbound = parse_message(message)
        except Exception as error:  # one unreadable message must not stop the rest
            self.stderr.write(f"message {label}: unreadable ({error})")
            counts["ignored"] += 1
            return
        result = inbound_email_process(workspace=workspace, inbound=inbound)
        if result.is_duplicate:
            counts["duplicates"] += 1
        elif result.is_ignored:
            counts["ignored"] += 1
            self.stderr.write(f"message {label} from {inbound.from_email or '?'}: ignored ({result.reason})")
        elif result.is_new_ticket:
            counts["new tickets"] += 1
        else:
            counts["replies"] += 1

    def _imap(self, workspace, options, counts) -> None:
        password = os.environ.get(options["imap_password_env"], "")
        if not options["imap_user"] or not password:
            raise CommandError(f"--imap-user and the {options['imap_password_env']} environment variable are needed")
        with imaplib.IMAP4_SSL(options["imap_host"], options["imap_port"]) as client:
            client.login(options["imap_user"], password)
            client.select(options["imap_folder"])
            _, data = client.search(None, "UNSEEN")
            for number in data[0].split():
                _, parts = client.fetch(number, "(BODY.PEEK[])")
                raw = next((part[1] for part in parts if isinstance(part, tuple)), None)
                if raw is None:
                    continue
                self._store(workspace, raw, counts, label=number.decode())
                client.store(number, "+FLAGS", "\\Seen")
