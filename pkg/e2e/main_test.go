package e2e

import (
	"testing"

	"portail/pkg/browsertest"
	"portail/pkg/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m, browsertest.CloseShared) }
