package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// proc is one function running as its own process, as on Knative.
type proc struct {
	name string
	url  string
	cmd  *exec.Cmd
	done chan struct{}
}

// buildFunctions compiles every function under functions/ into dir and
// returns their names.
func buildFunctions(dir string) ([]string, error) {
	entries, err := os.ReadDir("functions")
	if err != nil {
		return nil, fmt.Errorf("run make run from the repository root: %w", err)
	}
	var names, pkgs []string
	for _, e := range entries {
		if e.IsDir() {
			if _, err := os.Stat(filepath.Join("functions", e.Name(), "main.go")); err == nil {
				names = append(names, e.Name())
				pkgs = append(pkgs, "./functions/"+e.Name())
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	args := append([]string{"build", "-o", dir + "/"}, pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build functions: %w", err)
	}
	return names, nil
}

// listen picks the preferred port, or any free one when it is taken.
func listen(preferred int) (net.Listener, error) {
	if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", preferred)); err == nil {
		return ln, nil
	}
	return net.Listen("tcp", "127.0.0.1:0")
}

func freePort(preferred int) (int, error) {
	ln, err := listen(preferred)
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startProc runs a function binary with env and waits for /healthz. Its
// log lines go to logw prefixed with the function name.
func startProc(ctx context.Context, bin, name string, port int, env []string, logw io.Writer, logMu *sync.Mutex) (*proc, error) {
	p := &proc{name: name, url: fmt.Sprintf("http://127.0.0.1:%d", port), done: make(chan struct{})}
	p.cmd = exec.Command(bin)
	p.cmd.Env = append(append(os.Environ(), env...), fmt.Sprintf("PORT=%d", port))
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.cmd.Stderr = p.cmd.Stdout
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			logMu.Lock()
			fmt.Fprintf(logw, "%-18s %s\n", name, sc.Text())
			logMu.Unlock()
		}
	}()
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p, nil
			}
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited at start (see %s)", name, "its log")
		case <-ctx.Done():
			return nil, ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s did not become healthy", name)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

func (p *proc) stop() {
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
	}
}

func envList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}

func shortJSON(b []byte, n int) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len([]rune(s)) > n {
		return string([]rune(s)[:n-1]) + "…"
	}
	return s
}
