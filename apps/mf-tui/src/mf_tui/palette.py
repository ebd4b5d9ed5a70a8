"""The command palette's mf actions (ctrl+p): switch views, open a job, act on the monitored one."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


class MFCommands(Provider):
    def _commands(self) -> list[tuple[str, object, str]]:
        app = self.app
        commands = [
            ("Jobs", partial(app.switch_mode, "jobs"), "the jobs under the root"),
            ("New job (setup)", partial(app.switch_mode, "setup"),
             "set up, check and launch a run"),
            ("Generate", partial(app.switch_mode, "generate"), "chat with a checkpoint"),
        ]
        screen = app.screen
        if hasattr(screen, "action_stop") and hasattr(screen, "job"):
            commands += [
                ("Stop this job", screen.action_stop, f"SIGTERM {screen.job.name}'s launcher"),
                ("Restart this job from its last checkpoint", screen.action_restart,
                 "mf train <job>/job.yaml --resume, detached"),
            ]
        for path in getattr(app, "known_jobs", []):
            commands.append((f"Open job {path.name}", partial(app.open_job, path), str(path)))
        return commands

    async def discover(self) -> Hits:
        for name, callback, help_text in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback, help=help_text)
