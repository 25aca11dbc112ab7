package opcua_test

import (
	"testing"

	"go.uber.org/goleak"
)

// gopcua's server (the test double, not the client under test) runs one goroutine per
// subscription that only its lifetime or a DeleteSubscriptions ends; Server.Close does not
// stop it. A client torn down without CloseSession (a cut connection) leaves one behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/gopcua/opcua/server.(*Subscription).run"))
}
