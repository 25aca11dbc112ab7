package agent

import (
	"context"
	"net"
	"os"
	"strconv"
	"time"
)

// sdNotify sends one datagram of the systemd notify protocol (sd_notify(3)) to socket: a
// path, or an abstract socket when it starts with '@' (Go maps that to the leading NUL).
func sdNotify(socket, state string) error {
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return err
	}
	_, err = conn.Write([]byte(state))
	if cerr := conn.Close(); err == nil {
		err = cerr
	}
	return err
}

// watchdogPeriod is how often to pet systemd's watchdog: half of $WATCHDOG_USEC, or 0 when
// no watchdog is set for this process ($WATCHDOG_PID names another one).
func watchdogPeriod() time.Duration {
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	usec, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || usec <= 0 {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}

// runNotify speaks the notify protocol when systemd gave a socket ($NOTIFY_SOCKET, for
// Type=notify units): READY=1 after the first commit, WATCHDOG=1 every half watchdog period
// but only while the pipeline commits within its stall deadline (a stalled pipeline gets
// the process restarted), and STOPPING=1 when ctx is done. It returns when done is done.
func (a *Agent) runNotify(ctx, done context.Context) {
	socket := os.Getenv("NOTIFY_SOCKET")
	if socket == "" {
		return
	}
	log := a.log.With("component", "notify")
	failing := false
	send := func(state string) {
		err := sdNotify(socket, state)
		switch {
		case err != nil && !failing:
			log.Warn("sd_notify failed", "socket", socket, "err", err)
		case err == nil && failing:
			log.Info("sd_notify works again")
		}
		failing = err != nil
	}
	select {
	case <-a.obs.firstCommit:
		send("READY=1\nSTATUS=sealing")
		log.Debug("ready")
	case <-ctx.Done():
		send("STOPPING=1")
		return
	case <-done.Done():
		return
	}
	var tick <-chan time.Time
	if period := watchdogPeriod(); period > 0 {
		t := time.NewTicker(period)
		defer t.Stop()
		tick = t.C
		send("WATCHDOG=1")
	}
	stalled := false
	for {
		select {
		case <-ctx.Done():
			send("STOPPING=1")
			return
		case <-done.Done():
			return
		case <-tick:
			idle := a.obs.idle()
			if idle <= a.obs.stallAfter {
				if stalled {
					log.Info("pipeline advancing again; watchdog petted")
					send("STATUS=sealing")
				}
				stalled = false
				send("WATCHDOG=1")
				continue
			}
			if !stalled {
				stalled = true
				log.Error("pipeline stalled; no longer petting the watchdog", "idle_seconds", idle.Seconds(), "deadline_seconds", a.obs.stallAfter.Seconds())
				send("STATUS=pipeline stalled")
			}
		}
	}
}
