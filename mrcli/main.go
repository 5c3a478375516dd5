package mrcli

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"

	"github.com/urfave/cli/v2"
	"github.com/xrash/smetrics"

	"github.com/mrengine/mr/internal/pg"
	_ "github.com/mrengine/mr/jobs" // the built-in jobs
	"github.com/mrengine/mr/mapreduce"
)

// Exit codes of the mr command.
const (
	ExitOK     = 0 // done
	ExitFailed = 1 // failed; running the same command again resumes
	ExitUsage  = 2 // unknown job or command, bad or missing flag
	ExitAlert  = 3 // the failure rate is above --max-failure-rate: the run finished, or its map phase stopped early
)

// Main runs the mr command line with os.Args and exits with its exit code.
// SIGINT or SIGTERM stops a running run at its next commit point, with
// what it did committed (see mapreduce.Runner.Stop), and anything else
// (planning, mr status --watch, a replay) at once; a second signal stops a
// run at once too, and a third kills the process.
func Main() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	ctx, cancel := context.WithCancel(context.Background())
	s := &stopper{ch: make(chan struct{})}
	go func() {
		<-signals
		if s.stop() {
			<-signals
		}
		cancel()
		signal.Reset(os.Interrupt, syscall.SIGTERM) // the default: the next one kills
	}()
	code := Run(context.WithValue(ctx, stopKey{}, s), os.Args, os.Stdout, os.Stderr)
	cancel()
	os.Exit(code)
}

// A stopper asks a run to stop at its next commit point, once a command
// has handed its channel to a running run (take); before that, a signal
// cancels the context instead.
type stopper struct {
	mu    sync.Mutex
	ch    chan struct{}
	taken bool
}

type stopKey struct{}

// takeStop returns the channel that closes when the first signal asks
// ctx's run to stop (see Runner.Stop), or nil outside Main.
func takeStop(ctx context.Context) <-chan struct{} {
	s, _ := ctx.Value(stopKey{}).(*stopper)
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.taken = true
	return s.ch
}

// stop closes the channel if a run took it, and reports whether it did.
func (s *stopper) stop() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.taken {
		close(s.ch)
	}
	return s.taken
}

// Run runs the command line args (args[0] is the program name), writing
// results to out and diagnostics to errOut, and returns the exit code. It
// is the only place where errors become exit codes; the error itself is
// printed on errOut.
func Run(ctx context.Context, args []string, out, errOut io.Writer) int {
	app := NewApp(out, errOut)
	app.Metadata = map[string]any{argsKey: args}
	err := app.RunContext(ctx, args)
	var usage *usageError
	code, prefix := ExitFailed, ""
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &usage):
		code = ExitUsage
	case errors.Is(err, mapreduce.ErrFailureRate):
		code, prefix = ExitAlert, "ALERT: "
	}
	if app.Metadata[logFormatKey] == logJSON { // stderr holds JSON lines only
		level := slog.LevelError
		if code == ExitAlert {
			level = slog.LevelWarn
		}
		newLogger(errOut, logJSON, level).Log(ctx, level, prefix+err.Error(), "exit", code)
		return code
	}
	fmt.Fprintf(errOut, "mr: %s%v\n", prefix, err)
	return code
}

// argsKey keys the command line in the app's Metadata, for the commands
// that print it back (see resumeCommand).
const argsKey = "args"

// resumeCommand is the command line that resumes the run c's command
// starts after an interruption, quoted for a POSIX shell: the one given,
// without --fresh, which would discard what the interrupted run
// committed. It is "" for an app run without Run, which knows no
// command line.
func resumeCommand(c *cli.Context) string {
	args, _ := c.App.Metadata[argsKey].([]string)
	var words []string
	for i, arg := range args {
		if arg == "--" { // the rest are arguments, never flags
			for _, a := range args[i:] {
				words = append(words, shellQuote(a))
			}
			break
		}
		name, value, inline := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		flag := i > 0 && strings.HasPrefix(arg, "-")
		switch {
		case flag && name == "fresh":
			continue
		case flag && inline && dsnFlags[name]:
			arg = arg[:len(arg)-len(value)] + pg.Redact(value)
		case i > 1 && dsnFlags[strings.TrimLeft(args[i-1], "-")] && strings.HasPrefix(args[i-1], "-"):
			arg = pg.Redact(arg)
		}
		words = append(words, shellQuote(arg))
	}
	return strings.Join(words, " ")
}

// dsnFlags are the flags whose values may hold a password, which the
// resume command shows masked: the user types it again.
var dsnFlags = map[string]bool{"source": true, "sink": true}

// shellSafe matches the words a POSIX shell reads as they are.
var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellQuote quotes s for a POSIX shell: as it is if it is safe, else in
// single quotes, closing them around each quote it holds (written \').
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// NewApp builds the mr command line. Its commands return errors rather
// than exit: see Run for the exit codes.
func NewApp(out, errOut io.Writer) *cli.App {
	app := &cli.App{
		Name:      "mr",
		Usage:     "MapReduce aggregations over SQL tables that survive crashes and poison rows",
		UsageText: "mr COMMAND [flags] [arguments]",
		Description: `Start with mr demo. Exit codes: 0 done, 1 failed (run the same command
again to resume), 2 usage error, 3 done but more rows failed than
--max-failure-rate allows.`,
		Writer:          out,
		ErrWriter:       errOut,
		HideHelp:        true, // see helpFlag
		HideHelpCommand: true,
		HideVersion:     true, // see the version flag below
		Flags: []cli.Flag{helpFlag(),
			&cli.BoolFlag{Name: "version", Usage: "print the version of mr and the revision it was built from", DisableDefaultText: true}},
		// Main alone exits: urfave/cli must not call os.Exit itself.
		ExitErrHandler: func(*cli.Context, error) {},
		Commands: []*cli.Command{
			demoCommand(),
			rollupCommand(),
			runCommand(),
			jobsCommand(),
			statusCommand(),
			runsCommand(),
			gcCommand(),
			dlqCommand(),
			inspectCommand(),
			workerCommand(),
			migrateCommand(),
			uiCommand(),
		},
		Action: func(c *cli.Context) error {
			switch {
			case c.Args().Present():
				return unknownCommand(c, "")
			case c.Bool("version"):
				fmt.Fprintln(c.App.Writer, version(debug.ReadBuildInfo()))
				return nil
			}
			return cli.ShowAppHelp(c)
		},
		OnUsageError: onUsageError,
	}
	var setup func(cmds []*cli.Command)
	setup = func(cmds []*cli.Command) {
		for _, cmd := range cmds {
			cmd.OnUsageError = onUsageError
			cmd.HideHelp, cmd.HideHelpCommand = true, true
			cmd.Flags = append(cmd.Flags, helpFlag())
			setup(cmd.Subcommands)
		}
	}
	setup(app.Commands)
	return app
}

// unknownCommand is the usage error of a command line whose command
// (a subcommand of parent, if set) does not exist, with the nearest
// command's name if it looks like a typo of it.
func unknownCommand(c *cli.Context, parent string) error {
	name, cmds, hint := c.Args().First(), c.App.Commands, "mr --help"
	msg := fmt.Sprintf("unknown command %q", name)
	if parent != "" {
		cmds, hint = c.Command.Subcommands, "mr "+parent+" --help"
		msg += " for mr " + parent
	}
	if near := nearest(cmds, name); near != "" {
		msg += fmt.Sprintf("; did you mean %q?", near)
		hint = strings.TrimSuffix(hint, "--help") + near + " --help"
	}
	return usagef(hint, "%s", msg)
}

// typoSimilarity is the Jaro-Winkler similarity above which a word counts
// as a typo of a command's name. urfave/cli's own SuggestCommand, with the
// same measure, has no threshold (it names some command for any word:
// inspect for "nope") and offers a help command that mr does not have.
// Measured over mr's commands: swapped or doubled letters (statsu, rnu,
// gcc, insepct) score 0.82 to 0.97, unrelated words (nope, list, replay)
// 0.56 to 0.73.
const typoSimilarity = 0.8

// nearest returns the name of the command in cmds nearest to name, or ""
// if none is near enough to be what name was meant to be.
func nearest(cmds []*cli.Command, name string) string {
	best, score := "", typoSimilarity
	for _, cmd := range cmds {
		for _, n := range cmd.Names() {
			// The parameters urfave/cli uses (its suggestions.go).
			if s := smetrics.JaroWinkler(n, name, 0.7, 4); s > score {
				best, score = n, s
			}
		}
	}
	return best
}

// version is what mr --version prints: the main module's version and,
// when the go command stamped them (a build in a VCS checkout), the
// revision and whether the tree had uncommitted changes, so that a bug
// report names the exact code.
func version(info *debug.BuildInfo, ok bool) string {
	if !ok {
		return "mr (unknown version: built without module information)"
	}
	v := "mr " + cmp.Or(info.Main.Version, "(devel)")
	var details []string
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision":
			details = append(details, "revision "+s.Value)
		case s.Key == "vcs.time":
			details = append(details, "committed "+s.Value)
		case s.Key == "vcs.modified" && s.Value == "true":
			details = append(details, "with uncommitted changes")
		}
	}
	details = append(details, info.GoVersion)
	return v + " (" + strings.Join(details, ", ") + ")"
}

// helpFlag returns a --help flag for one command. urfave/cli would add its
// global cli.HelpFlag to every command instead, and parsing writes to it:
// a data race between apps run at once, as in tests.
func helpFlag() cli.Flag {
	return &cli.BoolFlag{Name: "help", Aliases: []string{"h"}, Usage: "show help", DisableDefaultText: true}
}

// usageError is a mistake on the command line. Its message ends with a
// command line to try.
type usageError struct {
	msg  string
	hint string // e.g. "mr jobs"
}

func (e *usageError) Error() string { return e.msg + "\nTry: " + e.hint }

// usagef returns a usageError with the hint and a formatted message.
func usagef(hint, format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...), hint: hint}
}

// onUsageError turns urfave/cli's flag parsing errors into usage errors.
func onUsageError(c *cli.Context, err error, _ bool) error {
	// Package flag names flags with one dash; mr's help shows two.
	return usagef(helpHint(c), "%s", flagDashes.ReplaceAllString(err.Error(), "$1 --$2"))
}

var flagDashes = regexp.MustCompile(`(flag|defined:|argument:) -([a-z])`)

// helpHint is the command line that shows the help of c's command.
func helpHint(c *cli.Context) string {
	name := "mr"
	if c.Command != nil && c.Command.HelpName != "" {
		name = c.Command.HelpName
	}
	return name + " --help"
}

// errHelpShown stops a command whose help was asked for after its
// positional arguments; it is not an error for the user.
var errHelpShown = errors.New("help shown")

// positional returns the positional arguments of c's command, after
// parsing the flags that follow the first of them: urfave/cli v2, like
// package flag, stops parsing flags at the first positional argument, but
// users write `mr run JOB --source URL`.
func positional(c *cli.Context) ([]string, error) {
	var args []string
	rest := c.Args().Slice()
	for i := 0; i < len(rest); i++ {
		arg := rest[i]
		if arg == "--" {
			args = append(args, rest[i+1:]...)
			break
		}
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			args = append(args, arg)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		f := lookupFlag(c.Command.Flags, name)
		if f == nil {
			return nil, usagef(helpHint(c), "flag provided but not defined: %s", arg)
		}
		if _, isBool := f.(*cli.BoolFlag); isBool && !hasValue {
			value, hasValue = "true", true
		}
		if !hasValue {
			if i+1 == len(rest) {
				return nil, usagef(helpHint(c), "flag needs an argument: %s", arg)
			}
			i++
			value = rest[i]
		}
		if name == "help" || name == "h" {
			if err := cli.ShowCommandHelp(c.Lineage()[1], c.Command.Name); err != nil {
				return nil, err
			}
			return nil, errHelpShown
		}
		if err := c.Set(name, value); err != nil {
			return nil, usagef(helpHint(c), "invalid value %q for flag --%s: %v", value, name, err)
		}
	}
	return args, nil
}

func lookupFlag(flags []cli.Flag, name string) cli.Flag {
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				return f
			}
		}
	}
	return nil
}

// action adapts a command's function to urfave/cli: it parses the
// positional arguments (see positional) and passes them on.
func action(fn func(c *cli.Context, args []string) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		args, err := positional(c)
		if errors.Is(err, errHelpShown) {
			return nil
		}
		if err != nil {
			return err
		}
		return fn(c, args)
	}
}
