package ftp_test

import (
	"bufio"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/carpipe/carpipe/plugins/inputs/ftp"
	"github.com/carpipe/carpipe/plugins/plugintest"
)

// scripted is an FTP server that answers every listing with the same lines,
// as a server carpipe's test server cannot be would: one with links and
// pipes, or a hostile one. It serves one client at a time and nothing else.
func scripted(t *testing.T, mlsd bool, lines []string) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go serveScript(c, mlsd, lines)
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

func serveScript(c net.Conn, mlsd bool, lines []string) {
	defer c.Close()
	r := bufio.NewReader(c)
	say := func(format string, args ...any) { fmt.Fprintf(c, format+"\r\n", args...) }
	say("220 scripted")
	var data net.Listener
	defer func() {
		if data != nil {
			data.Close()
		}
	}()
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch strings.ToUpper(cmd) {
		case "USER":
			say("331 password please")
		case "PASS":
			say("230 logged in")
		case "FEAT":
			if mlsd {
				say("211-Features:\r\n MLST type*;size*;modify*;\r\n211 End")
			} else {
				say("211-Features:\r\n SIZE\r\n211 End")
			}
		case "TYPE":
			say("200 binary")
		case "CWD":
			say("250 here")
		case "PWD":
			say(`257 "/" is the folder`)
		case "EPSV":
			if data, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
				say("425 no data connection")
				continue
			}
			say("229 Entering Extended Passive Mode (|||%d|)", data.Addr().(*net.TCPAddr).Port)
		case "MLSD", "LIST":
			if data == nil {
				say("425 use EPSV first")
				continue
			}
			say("150 listing")
			if dc, err := data.Accept(); err == nil {
				for _, l := range lines {
					fmt.Fprintf(dc, "%s\r\n", l)
				}
				dc.Close()
			}
			data.Close()
			data = nil
			say("226 done")
		case "QUIT":
			say("221 bye")
			return
		default:
			say("502 not here")
		}
	}
}

// TestListOnlyPlainFiles: links, pipes and folders of any spelling are
// left out, and so are names that climb out of the root or hold a slash,
// whether the server lists with MLSD or LIST. A backslash is a plain
// character.
func TestListOnlyPlainFiles(t *testing.T) {
	const when = "20230102030405"
	for _, tc := range []struct {
		name  string
		mlsd  bool
		lines []string
	}{
		{"MLSD", true, []string{
			"type=file;size=4;modify=" + when + "; real.json",
			"Type=File;Size=5;Modify=" + when + "; upper.json",
			"type=file;size=9;modify=" + when + `; c\d.json`,
			"type=OS.unix=slink:/etc/passwd;size=11;modify=" + when + "; link.json",
			"type=OS.unix=symlink;size=11;modify=" + when + "; link2.json",
			"type=OS.unix=fifo;size=0;modify=" + when + "; pipe.json",
			"type=DIR;modify=" + when + "; folder.json",
			"type=cdir;modify=" + when + "; .",
			"type=file;size=7;modify=" + when + "; ../x.json",
			"type=file;size=7;modify=" + when + "; /etc/passwd",
			"type=file;size=7;modify=" + when + "; a/b.json",
			"type=file;size=7;modify=" + when + `; a\..\..\x.json`,
		}},
		{"LIST", false, []string{
			"-rw-r--r-- 1 u g 4 Jan  2  2023 real.json",
			"-rw-r--r-- 1 u g 5 Jan  2  2023 upper.json",
			`-rw-r--r-- 1 u g 9 Jan  2  2023 c\d.json`,
			"lrwxrwxrwx 1 u g 11 Jan  2  2023 link.json -> /etc/passwd",
			"prw-r--r-- 1 u g 0 Jan  2  2023 pipe.json",
			"srw-r--r-- 1 u g 0 Jan  2  2023 socket.json",
			"crw-r--r-- 1 u g 0 Jan  2  2023 device.json",
			"drwxr-xr-x 2 u g 4096 Jan  2  2023 folder.json",
			"-rw-r--r-- 1 u g 7 Jan  2  2023 ../x.json",
			"-rw-r--r-- 1 u g 7 Jan  2  2023 /etc/passwd",
			"-rw-r--r-- 1 u g 7 Jan  2  2023 a/b.json",
			`-rw-r--r-- 1 u g 7 Jan  2  2023 a\..\..\x.json`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := ftp.New()
			f.Host, f.Port, f.User, f.Password = "127.0.0.1", scripted(t, tc.mlsd, tc.lines), "u", "p"
			f.Path = "/in"
			var logs plugintest.Buffer
			initFTP(t, f, &logs)
			var got []string
			for p := range listed(t, f) {
				got = append(got, p)
			}
			slices.Sort(got)
			if want := []string{`c\d.json`, "real.json", "upper.json"}; !slices.Equal(got, want) {
				t.Errorf("List = %q; want %q", got, want)
			}
			// ../x.json is a hidden name, left out without a word.
			for _, name := range []string{"/etc/passwd", "a/b.json", `a\..\..\x.json`} {
				if !strings.Contains(logs.String(), "name="+name) {
					t.Errorf("no warning names %s:\n%s", name, logs.String())
				}
			}
		})
	}
}
